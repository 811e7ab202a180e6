"""On PostgreSQL, the claim and the load of a run as PL/pgSQL functions.

PL/pgSQL keeps the plans of the statements inside a function for the session, so a worker's
claim (a CTE with SKIP LOCKED, an update of the unit and a move of its run) and the load of a
run (its row, inputs, steps and outputs as JSON) are planned once instead of on every call,
which otherwise costs about as much as running them. SQLite needs nothing: its statements are
short and it plans them in microseconds.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION gristmill_claim(
    p_worker text, p_queues text[], p_lease_until double precision, p_limit integer,
    p_now timestamptz
)
RETURNS TABLE (out_unit bigint, out_run uuid, out_attempt integer, out_kind varchar)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH picked AS (
        SELECT u.id FROM gristmill_unit u
        WHERE u.state = 'queued' AND (p_queues IS NULL OR u.queue = ANY (p_queues))
        ORDER BY u.id LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE gristmill_unit u
        SET state = 'claimed', attempt = u.attempt + 1, worker = p_worker,
            lease_until = p_lease_until
        FROM picked WHERE u.id = picked.id
        RETURNING u.id, u.run_id, u.attempt, u.kind
    ), moved AS (
        UPDATE gristmill_run r SET state = 'running', started_at = COALESCE(r.started_at, p_now)
        WHERE r.state = 'queued' AND r.id IN (SELECT c.run_id FROM claimed c)
    )
    SELECT c.id, c.run_id, c.attempt::integer, c.kind::varchar FROM claimed c;
END
$$;

-- VOLATILE, not STABLE: called beside gristmill_claim(), which takes fresh snapshots, it must
-- see the run that the claim just found, even if it committed after the calling statement began.
CREATE OR REPLACE FUNCTION gristmill_load(p_run uuid) RETURNS json
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (
        SELECT json_build_array(
            r.id, r.pipeline, r.state, r.params, r.queue, r.created_at, r.expires_at,
            r.started_at, r.finished_at, r.current_step, r.stage, r.progress_done,
            r.progress_total, r.error_message, r.error_ref, r.error_traceback,
            r.cancel_requested, r.owner_id, r.ancestor_id,
            (SELECT coalesce(json_agg(json_build_array(
                 i.name, i.path, i.size, i.sha256, i.media_type, i.kind, i.source)
                 ORDER BY i.position), '[]')
             FROM gristmill_input i WHERE i.run_id = r.id),
            (SELECT coalesce(json_agg(json_build_array(
                 s.name, s.position, s.state, s.attempt, s.result, s.fingerprint, s.error,
                 s.accepted, s.started_at, s.finished_at) ORDER BY s.position), '[]')
             FROM gristmill_step s WHERE s.run_id = r.id),
            (SELECT coalesce(json_agg(json_build_array(
                 o.step, o.name, o.path, o.size, o.sha256, o.media_type) ORDER BY o.id), '[]')
             FROM gristmill_output o WHERE o.run_id = r.id),
            (SELECT u.attempt FROM gristmill_unit u WHERE u.run_id = r.id
             ORDER BY u.id DESC LIMIT 1)
        )
        FROM gristmill_run r WHERE r.id = p_run
    );
END
$$;
"""

DROP = (
    "DROP FUNCTION IF EXISTS gristmill_claim(text, text[], double precision, integer, timestamptz);"
)


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("gristmill", "0001_initial")]
    operations = [migrations.RunPython(create, drop, elidable=False)]
