"""JSON documents: the parsed content of JSON data files, searchable by a JSON path.

On PostgreSQL the column is jsonb with a GIN index (``jsonb_path_ops``), which serves the
containment (``@>``) that narrows every path search; SQLite keeps the JSON as text, read with
JSON1, and gets no such index.
"""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

INDEX = "gristmill_jsondocument_data"


def _create_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX {INDEX} ON gristmill_jsondocument USING gin (data jsonb_path_ops)"
        )


def _drop_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("gristmill", "0012_lock_leases"),
    ]

    operations = [
        migrations.CreateModel(
            name="JsonDocument",
            fields=[
                (
                    "datafile",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="document",
                        serialize=False,
                        to="gristmill.datafile",
                    ),
                ),
                ("data", models.JSONField(help_text="The JSON value the data file holds.")),
            ],
            options={
                "db_table": "gristmill_jsondocument",
            },
        ),
        migrations.RunPython(_create_index, _drop_index, elidable=False),
    ]
