"""Quotas and fair queues: who submitted a run (``submitter``: ``user:<id>`` or
``address:<client address>``) and its pipeline's ``priority``, which the claim order reads
(priority, then turns across submitters), copied with each unit's turn onto the unit table
with the indexes serving that order; per-user quota overrides set by staff; and, on
PostgreSQL, ``gristmill_claim`` again, in that order."""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from gristmill.store.sql.columns import claim_function

_claim_0002 = importlib.import_module("gristmill.server.migrations.0002_postgres_claim_function")
_load_0009 = importlib.import_module("gristmill.server.migrations.0009_map_steps")


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(claim_function())


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        # 0002's claim (oldest first), which also brings back an older load: 0009's again.
        schema_editor.execute(_claim_0002.CREATE)
        _load_0009.forward(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("gristmill", "0010_notifications_sharing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="submitter",
            field=models.CharField(
                blank=True,
                help_text="Who submitted it: user:<id>, or address:<client address>.",
                max_length=100,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="priority",
            field=models.IntegerField(default=0, db_default=0),
        ),
        migrations.AddField(
            model_name="workunit",
            name="priority",
            field=models.IntegerField(db_default=0, default=0, help_text="The run's priority."),
        ),
        migrations.AddField(
            model_name="workunit",
            name="turn",
            field=models.IntegerField(
                db_default=0,
                default=0,
                help_text="Its submitter's load when it was queued (the fair claim order).",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["submitter", "created_at"], name="gristmill_run_submitter"),
        ),
        migrations.AddIndex(
            model_name="workunit",
            index=models.Index(
                fields=["state", "-priority", "turn", "id"], name="gristmill_unit_order"
            ),
        ),
        migrations.AddIndex(
            model_name="workunit",
            index=models.Index(
                fields=["state", "queue", "-priority", "turn", "id"],
                name="gristmill_unit_order_queue",
            ),
        ),
        migrations.CreateModel(
            name="Quota",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "concurrent",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Runs queued or running at once (empty: the site default).",
                        null=True,
                    ),
                ),
                (
                    "runs_per_day",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Runs in any 24 hours (empty: the site default).",
                        null=True,
                    ),
                ),
                (
                    "storage_mb",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Megabytes of inputs and outputs of unexpired runs "
                        "(empty: the site default).",
                        null=True,
                    ),
                ),
                (
                    "unlimited",
                    models.BooleanField(default=False, help_text="No quota at all for this user."),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="gristmill_quota",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"db_table": "gristmill_quota"},
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
