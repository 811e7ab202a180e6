"""On PostgreSQL, ``gristmill_load`` and ``gristmill_claim`` generated from the store's column
list (:mod:`gristmill.store.sql.columns`): the load now returns a JSON object keyed by column
name, which the store decodes by name. A migration that adds a column the store loads calls
``load_function()`` again, after adding the column."""

import importlib

from django.db import migrations

from gristmill.store.sql.columns import claim_function, load_function

# Going back restores the functions as 0006 left them (0002's claim, 0006's load).
_claim_0002 = importlib.import_module("gristmill.server.migrations.0002_postgres_claim_function")
_load_0006 = importlib.import_module("gristmill.server.migrations.0006_run_cancel_request")


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(claim_function())
        schema_editor.execute(load_function())


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_claim_0002.CREATE)
        _load_0006.forward(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("gristmill", "0007_supervisor_heartbeat")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
