-- Every statement of the SQL store, each under its name (read by gristmill.store.sql.queries).
--
-- Placeholders are %s for both dialects (SQLite's dialect turns them into ?). A few statements
-- hold a {slot} that the store fills once at import (state lists from gristmill.states) or per
-- call (a worker's queue list): nothing a user sends is ever formatted into them.
-- States are parameters, never literals, so that gristmill.states alone names them.

-- name: create_run
INSERT INTO gristmill_run (id, pipeline, queue, state, params, owner_id, ancestor_id,
    created_at, expires_at, cancel_requested, pinned, submitter, priority)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)

-- name: create_run_within_quota
-- A fence: inserts the run only if the submitter stays within {checks} (an AND of the
-- quota_* conditions below); nothing is stored otherwise.
INSERT INTO gristmill_run (id, pipeline, queue, state, params, owner_id, ancestor_id,
    created_at, expires_at, cancel_requested, pinned, submitter, priority)
SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s WHERE {checks}

-- name: quota_concurrent
(SELECT count(*) FROM gristmill_run WHERE submitter = %s AND state IN (%s, %s)) + %s <= %s

-- name: quota_per_day
(SELECT count(*) FROM gristmill_run WHERE submitter = %s AND created_at >= %s) + %s <= %s

-- name: quota_storage
(SELECT coalesce(sum(i.size), 0) FROM gristmill_input i JOIN gristmill_run r ON r.id = i.run_id
    WHERE r.submitter = %s AND r.state <> %s)
+ (SELECT coalesce(sum(o.size), 0) FROM gristmill_output o JOIN gristmill_run r
    ON r.id = o.run_id WHERE r.submitter = %s AND r.state <> %s) + %s <= %s

-- name: quota_usage
-- A submitter's usage: runs queued or running, runs created since, bytes of unexpired runs, and
-- the oldest of their runs created since (when the daily quota frees up).
SELECT
    (SELECT count(*) FROM gristmill_run WHERE submitter = %s AND state IN (%s, %s)),
    (SELECT count(*) FROM gristmill_run WHERE submitter = %s AND created_at >= %s),
    (SELECT coalesce(sum(i.size), 0) FROM gristmill_input i JOIN gristmill_run r
        ON r.id = i.run_id WHERE r.submitter = %s AND r.state <> %s)
    + (SELECT coalesce(sum(o.size), 0) FROM gristmill_output o JOIN gristmill_run r
        ON r.id = o.run_id WHERE r.submitter = %s AND r.state <> %s),
    (SELECT min(created_at) FROM gristmill_run WHERE submitter = %s AND created_at >= %s),
    (SELECT min(expires_at) FROM gristmill_run WHERE submitter = %s AND state <> %s)

-- name: create_input
INSERT INTO gristmill_input (run_id, position, name, kind, path, size, sha256, media_type,
    source)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)

-- name: create_unit
-- Every unit is queued with its run's priority and its turn: how many units its submitter
-- already has queued or running (the submitter's load, see submitter_load), plus the last
-- parameter, so that the claim order (priority DESC, turn, id) is an index scan; see
-- pick_units. The states are literals here: gristmill.states' UnitState and RunState values.
INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, max_attempts, worker,
    lease_until, priority, turn)
VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s,
    (SELECT r.priority FROM gristmill_run r WHERE r.id = %s), {submitter_load(%s)} + %s)

-- name: create_unit_at_turn
-- A unit of a bulk submission, whose turn the store worked out: the submitter's load read
-- once before the insert (submitter_load_of) plus the unit's place among the submission's.
INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, max_attempts, worker,
    lease_until, priority, turn)
VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s,
    (SELECT r.priority FROM gristmill_run r WHERE r.id = %s), %s)

-- name: submitter_load
-- A fragment, not a statement: {submitter_load(X)} in another statement becomes this, with
-- {arg} replaced by X (a run id). The load of that run's submitter: the units queued or
-- claimed of its runs queued or running (0 for a run without a submitter). Joined in this
-- order, each by an index (the run by key, the submitter's live runs by a partial index, their
-- units by run), so that it costs the submitter's live units, not every queued unit. The
-- units' state is counted, not filtered on, so that no plan starts from (or ANDs in) the
-- index on the units' state, which holds every queued unit of every submitter.
(SELECT count(CASE WHEN x.state IN ('queued', 'claimed') THEN 1 END)
    FROM gristmill_run s JOIN gristmill_run y ON y.submitter = s.submitter
    CROSS JOIN gristmill_unit x
    WHERE s.id = {arg} AND y.state IN ('queued', 'running') AND x.run_id = y.id)

-- name: submitter_load_of
SELECT count(CASE WHEN x.state IN ('queued', 'claimed') THEN 1 END)
FROM gristmill_run y CROSS JOIN gristmill_unit x
WHERE y.submitter = %s AND y.state IN ('queued', 'running') AND x.run_id = y.id

-- name: unit_of_run
SELECT id FROM gristmill_unit WHERE run_id = %s

-- name: run_exists
SELECT 1 FROM gristmill_run WHERE id = %s

-- name: unfinished_runs
SELECT id FROM gristmill_run WHERE state IN (%s, %s) AND id IN ({ids})

-- name: latest_of_source
SELECT r.id FROM gristmill_run r
JOIN gristmill_input i ON i.run_id = r.id AND i.position = 0
WHERE r.pipeline = %s AND r.owner_id = %s AND r.state = %s AND i.kind = %s AND i.source = %s
ORDER BY r.created_at DESC LIMIT 1

-- name: latest_of_name
SELECT r.id FROM gristmill_run r
JOIN gristmill_input i ON i.run_id = r.id AND i.position = 0
WHERE r.pipeline = %s AND r.owner_id = %s AND r.state = %s AND i.kind = %s AND i.name = %s
ORDER BY r.created_at DESC LIMIT 1

-- name: run_state
SELECT state FROM gristmill_run WHERE id = %s

-- name: read_log
SELECT id, at, step, stream, text FROM gristmill_logline
WHERE run_id = %s AND id > %s ORDER BY id LIMIT %s

-- name: add_log_line
INSERT INTO gristmill_logline (run_id, at, step, stream, text) VALUES (%s, %s, %s, %s, %s)

-- name: report_progress
UPDATE gristmill_run SET current_step = %s, stage = %s, progress_done = %s, progress_total = %s
WHERE id = %s

-- name: end_run
-- A cancel requested before this write commits wins over whatever the worker saw.
UPDATE gristmill_run SET
    state = CASE WHEN cancel_requested THEN %s ELSE %s END,
    error_message = CASE WHEN cancel_requested THEN %s ELSE %s END,
    error_ref = CASE WHEN cancel_requested THEN NULL ELSE %s END,
    error_traceback = CASE WHEN cancel_requested THEN NULL ELSE %s END,
    interrupted_step = CASE WHEN cancel_requested THEN %s ELSE %s END,
    finished_at = %s, current_step = NULL, stage = NULL, progress_done = NULL,
    progress_total = NULL
WHERE id = %s

-- name: start_run
UPDATE gristmill_run SET state = %s, started_at = %s WHERE id = %s

-- name: fence_unit
UPDATE gristmill_unit SET lease_until = %s, state = %s
WHERE id = %s AND attempt = %s AND state = %s

-- name: cancel_queued_run
UPDATE gristmill_run SET state = %s, finished_at = %s, error_message = %s,
    cancel_requested = %s, cancel_requested_at = %s, cancel_requested_by = %s
WHERE id = %s AND state = %s

-- name: end_queued_units
UPDATE gristmill_unit SET state = %s WHERE run_id = %s AND state = %s

-- name: end_queued_map_units
-- The units of a map (batches, a walk) still queued when their run ends end with it. Only a
-- run with a map has any: the guard, evaluated once, skips the scan for every other run,
-- whatever plan the units' indexes get (without statistics, PostgreSQL ANDs in the index on
-- the units' state and reads every queued unit of every run).
UPDATE gristmill_unit SET state = %s WHERE run_id = %s AND state = %s
    AND EXISTS (SELECT 1 FROM gristmill_map m WHERE m.run_id = %s)

-- name: cancel_running_run
UPDATE gristmill_run SET cancel_requested = %s,
    cancel_requested_at = COALESCE(cancel_requested_at, %s),
    cancel_requested_by = CASE WHEN cancel_requested_at IS NULL THEN %s
        ELSE cancel_requested_by END
WHERE id = %s AND state = %s

-- name: cancel_requested
SELECT cancel_requested FROM gristmill_run WHERE id = %s

-- name: requeue_run
UPDATE gristmill_run SET state = %s, finished_at = NULL, error_message = NULL,
    error_ref = NULL, error_traceback = NULL, cancel_requested = %s,
    cancel_requested_at = NULL, cancel_requested_by = NULL, interrupted_step = NULL,
    current_step = NULL, stage = NULL, progress_done = NULL, progress_total = NULL
WHERE id = %s AND state IN ({states})

-- name: add_next_unit
-- Attempt numbers keep rising over the run's life: they name work directories.
INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, max_attempts,
    priority, turn)
SELECT r.id, %s, r.queue, %s, u.attempt, 0, u.max_attempts, r.priority,
    {submitter_load(r.id)}
FROM gristmill_run r JOIN gristmill_unit u ON u.run_id = r.id WHERE r.id = %s AND u.kind = %s
ORDER BY u.id DESC LIMIT 1

-- name: expire_run
UPDATE gristmill_run SET state = %s, error_message = %s, error_ref = NULL,
    error_traceback = NULL, current_step = NULL, stage = NULL, progress_done = NULL,
    progress_total = NULL, expires_at = %s
WHERE id = %s AND state IN ({states})

-- name: delete_run_rows
DELETE FROM {table} WHERE run_id = %s

-- name: set_pinned
UPDATE gristmill_run SET pinned = %s WHERE id = %s AND state <> %s

-- name: due_for_expiry
SELECT id, created_at, expires_at FROM gristmill_run
WHERE expires_at <= %s AND state IN ({states}) AND NOT pinned ORDER BY expires_at LIMIT %s

-- name: unwiped
SELECT id FROM gristmill_run WHERE state = %s AND NOT wiped ORDER BY expires_at LIMIT %s

-- name: mark_wiped
UPDATE gristmill_run SET wiped = %s WHERE id = %s

-- name: accept_step
UPDATE gristmill_step SET fingerprint = %s, accepted = %s WHERE run_id = %s AND name = %s

-- name: upsert_step
INSERT INTO gristmill_step (run_id, name, position, state, attempt, result, fingerprint,
    error, accepted, started_at, finished_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (run_id, name) DO UPDATE SET position = excluded.position,
    state = excluded.state, attempt = excluded.attempt, result = excluded.result,
    fingerprint = excluded.fingerprint, error = excluded.error, accepted = excluded.accepted,
    started_at = excluded.started_at, finished_at = excluded.finished_at

-- name: delete_step_outputs
DELETE FROM gristmill_output WHERE run_id = %s AND step = %s

-- name: add_output
INSERT INTO gristmill_output (run_id, step, name, path, size, sha256, media_type)
VALUES (%s, %s, %s, %s, %s, %s, %s)

-- name: save_input
UPDATE gristmill_input SET name = %s, path = %s, size = %s, sha256 = %s, media_type = %s,
    source = %s
WHERE run_id = %s AND position = %s

-- name: pick_unit
SELECT id FROM gristmill_unit WHERE id = %s AND state = %s

-- name: pick_unit_of_run
SELECT id FROM gristmill_unit WHERE run_id = %s AND state = %s ORDER BY id LIMIT 1

-- name: pick_units
-- Fair order (seed 004's queue by load), decided when each unit was queued: priority first,
-- then the unit's turn (its submitter's load when it was queued), then id. The index
-- gristmill_unit_order (or gristmill_unit_order_queue with one queue) serves exactly this
-- order, so the pick reads the first rows of an index, not every queued unit. The queue
-- filter is {queues}, on u.
SELECT u.id FROM gristmill_unit u WHERE u.state = %s{queues}
ORDER BY u.priority DESC, u.turn, u.id
LIMIT %s

-- name: pick_units_by_priority
-- Priority only (no fairness across submitters): what the fair order is measured against.
SELECT u.id FROM gristmill_unit u JOIN gristmill_run r ON r.id = u.run_id
WHERE u.state = %s{queues} ORDER BY r.priority DESC, u.id LIMIT %s

-- name: any_queued_unit
SELECT 1 FROM gristmill_unit WHERE state = %s{queues} LIMIT 1

-- name: claim_units
UPDATE gristmill_unit SET state = %s, attempt = attempt + 1, worker = %s, lease_until = %s
WHERE id IN ({pick})
RETURNING id, run_id, attempt, kind

-- name: start_claimed_runs
-- The claimed runs' ids are appended to the parameters, in place of the one (%s). Queued runs
-- move to running; a run already running is not written (nor locked).
UPDATE gristmill_run SET state = %s, started_at = COALESCE(started_at, %s)
WHERE state = %s AND id IN (%s)

-- name: release_unit
-- A requeued unit gets a fresh turn: its submitter's load now (see create_unit).
UPDATE gristmill_unit SET lease_until = NULL, state = %s, worker = NULL,
    turn = {submitter_load(gristmill_unit.run_id)}
WHERE id = %s AND attempt = %s AND state = %s

-- name: requeue_released_run
UPDATE gristmill_run SET state = %s, stage = NULL WHERE id = %s AND state = %s

-- name: lose_unit
-- A requeued unit gets a fresh turn: its submitter's load now (see create_unit).
UPDATE gristmill_unit SET state = %s, worker = NULL, lease_until = NULL, failures = %s,
    last_error = %s,
    turn = {submitter_load(gristmill_unit.run_id)}
WHERE id = %s AND attempt = %s AND state = %s

-- name: requeue_lost_run
UPDATE gristmill_run SET state = %s, stage = NULL WHERE id = %s

-- name: units_of_worker
SELECT id, run_id, attempt, failures, max_attempts, kind FROM gristmill_unit
WHERE state = %s AND worker = %s

-- name: units_past_lease
SELECT id, run_id, attempt, failures, max_attempts, kind FROM gristmill_unit
WHERE state = %s AND lease_until < %s

-- name: queued_units_of_run
SELECT id, queue FROM gristmill_unit WHERE run_id = %s AND state = %s ORDER BY id

-- name: queued_walk_of_run
SELECT id, queue FROM gristmill_unit WHERE run_id = %s AND kind = %s AND state = %s

-- name: queued_unit
SELECT id, queue FROM gristmill_unit WHERE id = %s AND state = %s

-- name: queued_units_of_runs
SELECT id, queue FROM gristmill_unit WHERE state = %s AND run_id IN ({ids}) ORDER BY id

-- name: queued_units
SELECT id, queue FROM gristmill_unit WHERE state = %s ORDER BY id LIMIT %s

-- name: held_by
SELECT id, run_id, attempt, kind FROM gristmill_unit WHERE state = %s AND worker = %s
ORDER BY id

-- name: ping
SELECT 1

-- name: beat
INSERT INTO gristmill_supervisor (name, workers, started_at, beat_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET workers = excluded.workers, beat_at = excluded.beat_at

-- name: forget_silent_supervisors
DELETE FROM gristmill_supervisor WHERE beat_at < %s

-- name: sign_off
DELETE FROM gristmill_supervisor WHERE name = %s

-- name: take_lock
INSERT INTO gristmill_lock (name, holder, until) VALUES (%s, %s, %s)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE gristmill_lock.until < %s OR gristmill_lock.holder = excluded.holder

-- name: lock_holder
SELECT holder FROM gristmill_lock WHERE name = %s

-- name: give_back_lock
DELETE FROM gristmill_lock WHERE name = %s AND holder = %s

-- name: notify
SELECT pg_notify(%s, %s)

-- name: load_run_function
SELECT gristmill_load(%s)

-- name: load_runs_function
SELECT gristmill_load(k) FROM unnest(%s::uuid[]) AS k

-- name: claim_function
SELECT c.out_unit, c.out_run, c.out_attempt, c.out_kind, gristmill_load(c.out_run)
FROM gristmill_claim(%s, %s, %s, %s, %s) c

-- Map steps ---------------------------------------------------------------------------------

-- name: end_map_units
-- The units of the batches of a map being replaced: a late worker's writes are fenced out.
UPDATE gristmill_unit SET state = %s, lease_until = NULL
WHERE run_id = %s AND batch_id IN (SELECT id FROM gristmill_batch WHERE run_id = %s AND step = %s)

-- name: delete_map_rows
DELETE FROM {table} WHERE run_id = %s AND step = %s

-- name: create_map
INSERT INTO gristmill_map (run_id, step, position, on_failure, fingerprint, generation,
    batches_total, remaining, items_total, items_done, settled)
VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, 0, %s)

-- name: create_batch
INSERT INTO gristmill_batch (run_id, step, number, state, first_item, items, source,
    byte_start, byte_end, items_done, items_failed, counts, examples, failed_items)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0, '{}', '{}', '[]')

-- name: queue_batch_units
-- One queued unit per batch of the map in the given state, in batch order. Each one's turn is
-- the submitter's load plus the batch's position among them (0, 1, ...), so that another
-- submitter's run interleaves after a few batches.
INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, max_attempts,
    batch_id, priority, turn)
SELECT b.run_id, %s, r.queue, %s, 0, 0, %s, b.id, r.priority,
    {submitter_load(r.id)} + row_number() OVER (ORDER BY b.number) - 1
FROM gristmill_batch b JOIN gristmill_run r ON r.id = b.run_id
WHERE b.run_id = %s AND b.step = %s AND b.state = %s
ORDER BY b.number

-- name: queue_walk
-- The unit that walks the run's steps again once the map's last batch has ended: only when
-- the counter is at zero and the run still running.
INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, max_attempts,
    priority, turn)
SELECT r.id, %s, r.queue, %s,
    COALESCE((SELECT MAX(u.attempt) FROM gristmill_unit u WHERE u.run_id = r.id
        AND u.kind = %s), 0),
    0, (SELECT u.max_attempts FROM gristmill_unit u WHERE u.run_id = r.id
        ORDER BY u.id DESC LIMIT 1), r.priority,
    {submitter_load(r.id)}
FROM gristmill_run r JOIN gristmill_map m ON m.run_id = r.id
WHERE r.id = %s AND m.step = %s AND m.remaining = 0 AND r.state = %s

-- name: load_batch
SELECT b.run_id, b.step, m.batches_total, b.number, b.first_item, b.items, b.source,
    b.byte_start, b.byte_end, m.on_failure = %s AND EXISTS (SELECT 1 FROM gristmill_batch f
        WHERE f.run_id = b.run_id AND f.step = b.step AND f.state = %s)
FROM gristmill_unit u JOIN gristmill_batch b ON b.id = u.batch_id
JOIN gristmill_map m ON m.run_id = b.run_id AND m.step = b.step
WHERE u.id = %s

-- name: delete_batch_findings
-- What an earlier save of the unit's batch wrote, so that a save replaces and never adds. Only
-- an ended batch can have findings (reopening a batch deletes them), so the findings are looked
-- at only when the batch row, found by primary key, says it ended: a one-time test, and every
-- first save skips the scan whatever plan the findings' indexes get (without statistics, or
-- with statistics of many small runs, PostgreSQL may scan all of a run's findings by item).
DELETE FROM gristmill_finding WHERE run_id = %s AND step = %s AND batch = %s
    AND EXISTS (SELECT 1 FROM gristmill_unit u JOIN gristmill_batch b ON b.id = u.batch_id
        WHERE u.id = %s AND b.state <> %s)

-- name: add_finding
INSERT INTO gristmill_finding (run_id, step, batch, item, kind, finding)
VALUES (%s, %s, %s, %s, %s, %s)

-- name: end_batch
-- The unit's batch, by primary key: by (run, step, number) PostgreSQL may pick the index on
-- (run, step, state) and read every batch of the map.
UPDATE gristmill_batch SET state = %s, items_done = %s, items_failed = %s, counts = %s,
    examples = %s, failed_items = %s, error = %s
WHERE id = (SELECT batch_id FROM gristmill_unit WHERE id = %s)

-- name: count_down
UPDATE gristmill_map SET remaining = remaining - 1, items_done = items_done + %s
WHERE run_id = %s AND step = %s

-- name: map_progress
UPDATE gristmill_run SET current_step = %s, stage = %s,
    progress_done = (SELECT items_done FROM gristmill_map WHERE run_id = %s AND step = %s),
    progress_total = (SELECT items_total FROM gristmill_map WHERE run_id = %s AND step = %s)
WHERE id = %s AND state = %s

-- name: maps_of_run
SELECT step, position, on_failure, fingerprint, generation, batches_total, remaining,
    items_total, items_done, settled
FROM gristmill_map WHERE run_id = %s ORDER BY position

-- name: batches_of_run
SELECT step, number, first_item, items, state, items_done, items_failed, counts, examples,
    failed_items, error
FROM gristmill_batch WHERE run_id = %s ORDER BY step, number

-- name: read_findings
-- A page ends with an item's last finding: up to the item of the page's last finding.
SELECT item, batch, kind, finding FROM gristmill_finding
WHERE run_id = %s AND step = %s AND item > %s{kind} AND item <= (
    SELECT MAX(p.item) FROM (SELECT item FROM gristmill_finding
        WHERE run_id = %s AND step = %s AND item > %s{kind} ORDER BY item LIMIT %s) p)
ORDER BY item, id

-- name: settle_maps
UPDATE gristmill_map SET settled = %s WHERE run_id = %s

-- name: retry_run
UPDATE gristmill_run SET state = %s, finished_at = NULL, error_message = NULL,
    error_ref = NULL, error_traceback = NULL, cancel_requested = %s,
    cancel_requested_at = NULL, cancel_requested_by = NULL, interrupted_step = NULL
WHERE id = %s AND state IN ({states})

-- name: unfinished_batches
-- Batches to retry: those not done, and done ones that listed failed items.
SELECT step, COUNT(*), COALESCE(SUM(items_done), 0) FROM gristmill_batch
WHERE run_id = %s AND (state <> %s OR items_failed > 0) GROUP BY step

-- name: reopen_map
UPDATE gristmill_map SET remaining = %s, items_done = items_done - %s,
    generation = generation + 1, settled = %s
WHERE run_id = %s AND step = %s

-- name: reset_batches
UPDATE gristmill_batch SET state = %s, items_done = 0, items_failed = 0, counts = '{}',
    examples = '{}', failed_items = '[]', error = NULL
WHERE run_id = %s AND step = %s AND (state <> %s OR items_failed > 0)

-- name: delete_unfinished_findings
DELETE FROM gristmill_finding WHERE run_id = %s AND step = %s AND batch IN (
    SELECT number FROM gristmill_batch WHERE run_id = %s AND step = %s
        AND (state <> %s OR items_failed > 0))

-- name: latest_max_attempts
SELECT max_attempts FROM gristmill_unit WHERE run_id = %s ORDER BY id DESC LIMIT 1

-- name: fail_lost_batch
UPDATE gristmill_batch SET state = %s, items_done = 0, items_failed = 0, counts = '{}',
    examples = '{}', failed_items = '[]', error = %s
WHERE id = (SELECT batch_id FROM gristmill_unit WHERE id = %s)

-- name: batch_of_unit
SELECT b.step, b.number FROM gristmill_unit u JOIN gristmill_batch b ON b.id = u.batch_id
WHERE u.id = %s

-- name: notify_if_map_done
-- A batch's end rings the work doorbell only when it queued the walk: a NOTIFY serialises
-- commits, which every batch's would pay for nothing.
SELECT pg_notify(%s, %s) FROM gristmill_map WHERE run_id = %s AND step = %s AND remaining = 0
