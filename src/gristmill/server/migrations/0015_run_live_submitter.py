"""A partial index on the live runs' submitter: the submitter's load that gives each queued
unit its turn in the fair order is read through it, at a cost of the submitter's live units
instead of every queued unit (a bulk submission of thousands of runs grew quadratically)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gristmill", "0014_claim_leaves_running_runs")]

    operations = [
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(
                    ("state__in", ["queued", "running"]), ("submitter__isnull", False)
                ),
                fields=["submitter"],
                name="gristmill_run_live_submitter",
            ),
        ),
    ]
