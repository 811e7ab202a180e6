"""Two indexes fewer on the units, each written at every state change of every unit: the one
on the run (the leading column of the index on run, kind and id) and the one on state, queue
and id (the leading columns of the claim order's indexes serve what read it). And, on
PostgreSQL, ``gristmill_claim`` again: it finds the claimed units' runs by a join on their key
(the same claims, the same result)."""

from django.db import migrations

from gristmill.store.sql.columns import claim_function


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(claim_function())


class Migration(migrations.Migration):
    dependencies = [("gristmill", "0015_run_live_submitter")]

    # Backwards, the function stays: it claims as 0015's did, on 0015's tables.
    operations = [
        migrations.RemoveIndex(model_name="workunit", name="gristmill_unit_claim"),
        migrations.RemoveIndex(model_name="workunit", name="gristmill_unit_run"),
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
