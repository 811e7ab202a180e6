"""Database tables. Hot paths (claim, persist, release) use raw SQL in ``store.py``; these
models define the schema, the migrations and the admin's view of it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from gristmill.states import RunState, StepState

RUN_STATES = [(s.value, s.value) for s in RunState]
STEP_STATES = [(s.value, s.value) for s in StepState]


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.CharField(max_length=64)
    queue = models.CharField(max_length=64, default="default")
    state = models.CharField(max_length=16, choices=RUN_STATES, default=RunState.QUEUED)
    params = models.JSONField(default=dict)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="gristmill_runs",
        db_index=False,
    )
    ancestor = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    current_step = models.CharField(max_length=100, null=True, blank=True)
    stage = models.CharField(max_length=200, null=True, blank=True)
    progress_done = models.BigIntegerField(null=True, blank=True)
    progress_total = models.BigIntegerField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    error_ref = models.CharField(max_length=32, null=True, blank=True)
    error_traceback = models.TextField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When the run was asked to stop."
    )
    cancel_requested_by = models.CharField(
        max_length=150,
        null=True,
        blank=True,
        help_text="The user name of who asked it to stop; empty for a caller without an account.",
    )
    interrupted_step = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        help_text="The step that was running when a cancel stopped the run.",
    )
    pinned = models.BooleanField(default=False)
    wiped = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Whether an expired run's files are gone (the pruner resumes where not).",
    )
    submitter = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        help_text="Who submitted it: user:<id>, or address:<client address>.",
    )
    priority = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "gristmill_run"
        # Few indexes on purpose: every one is paid on each submit and state change. These
        # two serve the run lists (a user's own runs, and all runs for staff), newest first;
        # the partial one finds expired runs whose files are still to be removed (few rows).
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="gristmill_run_owner"),
            models.Index(fields=["-created_at"], name="gristmill_run_created"),
            # A submitter's quota usage at each submission (its runs of the last day).
            models.Index(fields=["submitter", "created_at"], name="gristmill_run_submitter"),
            # A submitter's load (its live runs' units) at each unit queued: the turn of the
            # fair order (queries.sql, submitter_load). Partial: only live runs that have a
            # submitter, so that only a query comparing the submitter can use it (a claim's
            # "state = queued" must not: it would read every live run).
            models.Index(
                fields=["submitter"],
                name="gristmill_run_live_submitter",
                condition=models.Q(submitter__isnull=False, state__in=["queued", "running"]),
            ),
            models.Index(
                fields=["expires_at"],
                name="gristmill_run_unwiped",
                condition=models.Q(state="expired", wiped=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline} run {self.id} ({self.state})"


class Input(models.Model):
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="inputs", db_index=False
    )  # the unique constraint indexes run first
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, default="file")
    path = models.CharField(max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=200)
    source = models.TextField(blank=True, default="")

    class Meta:
        db_table = "gristmill_input"
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="gristmill_input_position")
        ]


class Step(models.Model):
    """The latest outcome of one step of a run; a new attempt replaces it."""

    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="steps", db_index=False
    )  # the unique constraint indexes run first
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=STEP_STATES)
    attempt = models.PositiveIntegerField()
    result = models.TextField(null=True, blank=True)
    fingerprint = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    accepted = models.BooleanField(default=False)
    started_at = models.FloatField(null=True, blank=True)
    finished_at = models.FloatField(null=True, blank=True)

    class Meta:
        db_table = "gristmill_step"
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="gristmill_step_name")]


class Output(models.Model):
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="outputs", db_index=False
    )  # the unique constraint indexes run first
    step = models.CharField(max_length=100)
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=200)

    class Meta:
        db_table = "gristmill_output"
        constraints = [
            models.UniqueConstraint(fields=["run", "step", "name"], name="gristmill_output_name")
        ]


class LogLine(models.Model):
    """Append-only; read from an offset (``id > after``)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines", db_index=False)
    at = models.FloatField()
    step = models.CharField(max_length=100, blank=True, default="")
    stream = models.CharField(max_length=8, default="log")
    text = models.TextField()

    class Meta:
        db_table = "gristmill_logline"
        indexes = [models.Index(fields=["run", "id"], name="gristmill_log_run_id")]


class WorkUnit(models.Model):
    """A unit of work: what a worker claims under a lease. ``attempt`` is the fencing token."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="units", db_index=False)
    kind = models.CharField(max_length=16, default="run")
    queue = models.CharField(max_length=64, default="default")
    state = models.CharField(max_length=16, default="queued")  # queued | claimed | done
    attempt = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    worker = models.CharField(max_length=100, null=True, blank=True)
    lease_until = models.FloatField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    batch_id = models.BigIntegerField(
        null=True, blank=True, help_text="The batch a unit of kind batch stands for."
    )
    priority = models.IntegerField(default=0, db_default=0, help_text="The run's priority.")
    turn = models.IntegerField(
        default=0,
        db_default=0,
        help_text="Its submitter's load when it was queued (the fair claim order).",
    )

    class Meta:
        db_table = "gristmill_unit"
        indexes = [
            # A run's units; of a kind, the latest (its attempt), past a map's thousand batch
            # units. Every index here is written at each of a unit's state changes: there is
            # no other on the run, and none on (state, queue, id), which the order indexes'
            # leading columns serve.
            models.Index(fields=["run", "kind", "id"], name="gristmill_unit_run_kind"),
            # The fair claim order (priority DESC, turn, id) of the queued units, of all queues
            # and of one queue: a claim reads the first entries, never sorts the queue.
            models.Index(fields=["state", "-priority", "turn", "id"], name="gristmill_unit_order"),
            models.Index(
                fields=["state", "queue", "-priority", "turn", "id"],
                name="gristmill_unit_order_queue",
            ),
        ]


class ApiToken(models.Model):
    """A key that lets a program act as its user on the REST API (``Authorization: Bearer``).

    Only a SHA-256 digest of the key is kept; the key itself is shown once, when it is made.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gristmill_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=12, help_text="The key's first characters, to tell it apart."
    )
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "gristmill_apitoken"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class DataFile(models.Model):
    """A file a user keeps on the server to hand to pipelines again and again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="gristmill_datafiles",
        db_index=False,
    )  # the (owner, created_at) index serves lookups by owner
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=200)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "gristmill_datafile"
        indexes = [models.Index(fields=["owner", "-created_at"], name="gristmill_datafile_owner")]

    def __str__(self) -> str:
        return self.name


class LockLease(models.Model):
    """A lock shared by every process on the database (``Store.try_lock``), held by
    ``holder`` until it gives it back or ``until`` (a Unix time) passes."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=200, help_text="host:process:thread:store")
    until = models.FloatField(help_text="When the lease runs out (Unix time).")

    class Meta:
        db_table = "gristmill_lock"

    def __str__(self) -> str:
        return self.name


class Supervisor(models.Model):
    """A running supervisor of local workers (``gristmill worker``, ``gristmill serve``) and its
    heartbeat, from which the health check reports the workers' liveness."""

    name = models.CharField(max_length=100, primary_key=True, help_text="host/process id")
    workers = models.PositiveIntegerField(help_text="Live worker processes at the last beat.")
    started_at = models.FloatField()
    beat_at = models.FloatField()

    class Meta:
        db_table = "gristmill_supervisor"

    def __str__(self) -> str:
        return self.name


class NotifySettings(models.Model):
    """A user's notification settings: the default of each run's "e-mail me" choice."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="gristmill_notify",
    )
    email_runs = models.BooleanField(
        default=False, help_text="E-mail the user when their runs end, unless a run says not to."
    )

    class Meta:
        db_table = "gristmill_notifysettings"


class Notification(models.Model):
    """One message to send when a run ends (the outbox): an e-mail or a webhook call.

    Made with the run's submission, so it is in the database before the run can end; senders
    take the pending ones whose run has ended, under a lease, and log each attempt.
    """

    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )  # the (run, id) index serves lookups by run
    channel = models.CharField(max_length=16, help_text="email or webhook")
    target = models.TextField(help_text="The e-mail address or the webhook's URL.")
    origin = models.CharField(
        max_length=16, help_text="run (asked at submission), user (their setting), pipeline or site"
    )
    state = models.CharField(max_length=16, default="pending")  # pending | sent | failed
    attempts = models.PositiveIntegerField(default=0)
    next_at = models.FloatField(help_text="Not tried again before this Unix time.")
    lease_until = models.FloatField(null=True, blank=True)
    body = models.TextField(
        null=True, blank=True, help_text="What is sent, fixed at the first attempt."
    )
    created_at = models.FloatField()
    sent_at = models.FloatField(null=True, blank=True)

    class Meta:
        db_table = "gristmill_notification"
        indexes = [
            models.Index(
                fields=["next_at"],
                name="gristmill_notification_due",
                condition=models.Q(state="pending"),
            ),
            models.Index(fields=["run", "id"], name="gristmill_notification_run"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.target} ({self.state})"


class DeliveryAttempt(models.Model):
    """One attempt to send a :class:`Notification`: what the other end answered, or why not."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    at = models.FloatField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "gristmill_deliveryattempt"


class RunShare(models.Model):
    """A private run shown, read-only, to a named user or to whoever holds a link's token."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="shares", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="gristmill_shared_runs",
    )
    token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "gristmill_runshare"
        constraints = [
            models.UniqueConstraint(fields=["run", "user"], name="gristmill_runshare_user"),
            models.CheckConstraint(
                condition=models.Q(user__isnull=True) ^ models.Q(token__isnull=True),
                name="gristmill_runshare_user_or_token",
            ),
        ]
        indexes = [models.Index(fields=["run"], name="gristmill_runshare_run")]


class MapStep(models.Model):
    """A map step of a run cut into batches: its remaining counter is what the last batch
    brings to zero (see :meth:`gristmill.store.base.Store.save_batch`)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="maps", db_index=False)
    step = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    on_failure = models.CharField(max_length=16)
    fingerprint = models.TextField()
    generation = models.PositiveIntegerField(default=1)
    batches_total = models.PositiveIntegerField()
    remaining = models.IntegerField()
    items_total = models.BigIntegerField()
    items_done = models.BigIntegerField(default=0)
    settled = models.BooleanField(default=False)

    class Meta:
        db_table = "gristmill_map"
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="gristmill_map_step")]


class Batch(models.Model):
    """One batch of a map step: where its items are, its unit, and once ended its counts."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="batches", db_index=False)
    step = models.CharField(max_length=100)
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=16, default="pending")
    first_item = models.BigIntegerField()
    items = models.PositiveIntegerField()
    source = models.CharField(max_length=500)
    byte_start = models.BigIntegerField(default=0)
    byte_end = models.BigIntegerField(null=True, blank=True)
    items_done = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    counts = models.TextField(default="{}")
    examples = models.TextField(default="{}")
    failed_items = models.TextField(default="[]")
    error = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "gristmill_batch"
        constraints = [
            models.UniqueConstraint(fields=["run", "step", "number"], name="gristmill_batch_number")
        ]
        # Whether a batch of the map failed: asked when each batch is loaded.
        indexes = [models.Index(fields=["run", "step", "state"], name="gristmill_batch_state")]


class Finding(models.Model):
    """One finding of a map step for one item, as the item function returned it."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="findings", db_index=False)
    step = models.CharField(max_length=100)
    batch = models.PositiveIntegerField()
    item = models.BigIntegerField()
    kind = models.CharField(max_length=200)
    finding = models.TextField()

    class Meta:
        db_table = "gristmill_finding"
        indexes = [
            models.Index(fields=["run", "step", "kind", "item"], name="gristmill_finding_kind"),
            models.Index(fields=["run", "step", "batch"], name="gristmill_finding_batch"),
            models.Index(fields=["run", "step", "item"], name="gristmill_finding_item"),
        ]


class Quota(models.Model):
    """A user's own quotas, set by staff in the admin: each empty field takes the site default
    (``GRISTMILL_QUOTA_*``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gristmill_quota"
    )
    concurrent = models.PositiveIntegerField(
        null=True, blank=True, help_text="Runs queued or running at once (empty: the site default)."
    )
    runs_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Runs in any 24 hours (empty: the site default)."
    )
    storage_mb = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Megabytes of inputs and outputs of unexpired runs (empty: the site default).",
    )
    unlimited = models.BooleanField(default=False, help_text="No quota at all for this user.")

    class Meta:
        db_table = "gristmill_quota"

    def __str__(self) -> str:
        return f"quota of {self.user}"


class JsonDocument(models.Model):
    """The parsed content of a JSON data file, kept in the database to be searched by a JSON
    path (jsonb with a GIN index on PostgreSQL, JSON1 on SQLite); goes with its data file."""

    datafile = models.OneToOneField(
        DataFile, on_delete=models.CASCADE, primary_key=True, related_name="document"
    )
    data = models.JSONField(help_text="The JSON value the data file holds.")

    class Meta:
        db_table = "gristmill_jsondocument"

    def __str__(self) -> str:
        return f"document of {self.datafile_id}"
