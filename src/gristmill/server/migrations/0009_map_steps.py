"""Map steps: the map of a step cut into batches (its remaining counter), its batches and
their findings, and the batch a unit stands for; and, on PostgreSQL, ``gristmill_load``
again, whose attempt is now the run's latest ``run`` unit's (batch units have attempts of
their own)."""

import django.db.models.deletion
from django.db import migrations, models

from gristmill.store.sql.columns import load_function


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(load_function())


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    # The load of 0009 reads only columns 0008 had: it serves the older schema as well.
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("gristmill", "0008_store_functions_from_columns"),
    ]

    operations = [
        migrations.AddField(
            model_name="workunit",
            name="batch_id",
            field=models.BigIntegerField(
                blank=True, help_text="The batch a unit of kind batch stands for.", null=True
            ),
        ),
        migrations.CreateModel(
            name="Batch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("step", models.CharField(max_length=100)),
                ("number", models.PositiveIntegerField()),
                ("state", models.CharField(default="pending", max_length=16)),
                ("first_item", models.BigIntegerField()),
                ("items", models.PositiveIntegerField()),
                ("source", models.CharField(max_length=500)),
                ("byte_start", models.BigIntegerField(default=0)),
                ("byte_end", models.BigIntegerField(blank=True, null=True)),
                ("items_done", models.PositiveIntegerField(default=0)),
                ("items_failed", models.PositiveIntegerField(default=0)),
                ("counts", models.TextField(default="{}")),
                ("examples", models.TextField(default="{}")),
                ("failed_items", models.TextField(default="[]")),
                ("error", models.TextField(blank=True, null=True)),
                (
                    "run",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="batches",
                        to="gristmill.run",
                    ),
                ),
            ],
            options={
                "db_table": "gristmill_batch",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run", "step", "number"), name="gristmill_batch_number"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Finding",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("step", models.CharField(max_length=100)),
                ("batch", models.PositiveIntegerField()),
                ("item", models.BigIntegerField()),
                ("kind", models.CharField(max_length=200)),
                ("finding", models.TextField()),
                (
                    "run",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="findings",
                        to="gristmill.run",
                    ),
                ),
            ],
            options={
                "db_table": "gristmill_finding",
                "indexes": [
                    models.Index(
                        fields=["run", "step", "kind", "item"], name="gristmill_finding_kind"
                    ),
                    models.Index(fields=["run", "step", "batch"], name="gristmill_finding_batch"),
                    models.Index(fields=["run", "step", "item"], name="gristmill_finding_item"),
                ],
            },
        ),
        migrations.CreateModel(
            name="MapStep",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("step", models.CharField(max_length=100)),
                ("position", models.PositiveIntegerField()),
                ("on_failure", models.CharField(max_length=16)),
                ("fingerprint", models.TextField()),
                ("generation", models.PositiveIntegerField(default=1)),
                ("batches_total", models.PositiveIntegerField()),
                ("remaining", models.IntegerField()),
                ("items_total", models.BigIntegerField()),
                ("items_done", models.BigIntegerField(default=0)),
                ("settled", models.BooleanField(default=False)),
                (
                    "run",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="maps",
                        to="gristmill.run",
                    ),
                ),
            ],
            options={
                "db_table": "gristmill_map",
                "constraints": [
                    models.UniqueConstraint(fields=("run", "step"), name="gristmill_map_step")
                ],
            },
        ),
        migrations.AddIndex(
            model_name="batch",
            index=models.Index(fields=["run", "step", "state"], name="gristmill_batch_state"),
        ),
        migrations.AddIndex(
            model_name="workunit",
            index=models.Index(fields=["run", "kind", "id"], name="gristmill_unit_run_kind"),
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
