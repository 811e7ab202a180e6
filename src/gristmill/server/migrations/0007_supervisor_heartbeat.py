"""Supervisors' heartbeats, read by the health check."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gristmill", "0006_run_cancel_request"),
    ]

    operations = [
        migrations.CreateModel(
            name="Supervisor",
            fields=[
                (
                    "name",
                    models.CharField(
                        help_text="host/process id",
                        max_length=100,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "workers",
                    models.PositiveIntegerField(
                        help_text="Live worker processes at the last beat."
                    ),
                ),
                ("started_at", models.FloatField()),
                ("beat_at", models.FloatField()),
            ],
            options={
                "db_table": "gristmill_supervisor",
            },
        ),
    ]
