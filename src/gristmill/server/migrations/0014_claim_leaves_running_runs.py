"""On PostgreSQL, ``gristmill_claim`` again: it no longer writes (and locks) the row of a run
that is already running, which every claim of a map's batches did while other workers were
writing that run's progress. The same claims, the same order, the same result."""

from django.db import migrations

from gristmill.store.sql.columns import claim_function


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(claim_function())


class Migration(migrations.Migration):
    dependencies = [("gristmill", "0013_json_documents")]

    # Backwards, the function stays: it claims as 0013's did, on 0013's tables.
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
