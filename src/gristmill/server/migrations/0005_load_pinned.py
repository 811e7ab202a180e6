"""On PostgreSQL, ``gristmill_load`` returns whether the run is pinned, after its ancestor (the
order of ``gristmill.server.rows.RUN_FIELDS``). SQLite builds the same query from those fields."""

from django.db import migrations

RUN_COLUMNS = (
    "r.id, r.pipeline, r.state, r.params, r.queue, r.created_at, r.expires_at, "
    "r.started_at, r.finished_at, r.current_step, r.stage, r.progress_done, "
    "r.progress_total, r.error_message, r.error_ref, r.error_traceback, "
    "r.cancel_requested, r.owner_id, r.ancestor_id"
)


def load_function(run_columns: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION gristmill_load(p_run uuid) RETURNS json
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (
        SELECT json_build_array(
            {run_columns},
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


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(load_function(f"{RUN_COLUMNS}, r.pinned"))


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(load_function(RUN_COLUMNS))


class Migration(migrations.Migration):
    dependencies = [("gristmill", "0004_run_wiped")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
