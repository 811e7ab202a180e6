"""Executors move unit ids to the engine: in this process, to local worker processes, or over
Celery. They hold no state of their own; the database is the truth."""
