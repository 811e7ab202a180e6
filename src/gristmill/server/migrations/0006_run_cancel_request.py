"""Who asked a run to stop and when, and which step the cancel interrupted; on PostgreSQL,
``gristmill_load`` returns them after ``pinned`` (the order of
``gristmill.server.rows.RUN_FIELDS``)."""

import importlib

from django.db import migrations, models

# The function's body is 0005's; only the run's columns grow.
_load = importlib.import_module("gristmill.server.migrations.0005_load_pinned")
RUN_COLUMNS = f"{_load.RUN_COLUMNS}, r.pinned"


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            _load.load_function(
                f"{RUN_COLUMNS}, r.cancel_requested_at, r.cancel_requested_by, r.interrupted_step"
            )
        )


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_load.load_function(RUN_COLUMNS))


class Migration(migrations.Migration):
    dependencies = [("gristmill", "0005_load_pinned")]
    operations = [
        migrations.AddField(
            model_name="run",
            name="cancel_requested_at",
            field=models.DateTimeField(
                blank=True, help_text="When the run was asked to stop.", null=True
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="cancel_requested_by",
            field=models.CharField(
                blank=True,
                help_text=(
                    "The user name of who asked it to stop; empty for a caller without an account."
                ),
                max_length=150,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="interrupted_step",
            field=models.CharField(
                blank=True,
                help_text="The step that was running when a cancel stopped the run.",
                max_length=100,
                null=True,
            ),
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
