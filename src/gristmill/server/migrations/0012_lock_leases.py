"""Locks that expire: a lease row per lock, so that a frozen holder cannot keep one forever."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gristmill", "0011_quotas"),
    ]

    operations = [
        migrations.CreateModel(
            name="LockLease",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                (
                    "holder",
                    models.CharField(help_text="host:process:thread:store", max_length=200),
                ),
                (
                    "until",
                    models.FloatField(help_text="When the lease runs out (Unix time)."),
                ),
            ],
            options={
                "db_table": "gristmill_lock",
            },
        ),
    ]
