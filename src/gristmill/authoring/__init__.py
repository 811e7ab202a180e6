"""What pipeline authors write with: tasks, commands, pipelines, inputs, parameters and
validators, the run context, fingerprints and the registry of pipelines.

Imports nothing of gristmill but :mod:`gristmill.errors` (and the other modules here); the
curated names are re-exported by :mod:`gristmill`.
"""
