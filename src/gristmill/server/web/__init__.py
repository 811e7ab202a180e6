"""gristmill's web pages: server-rendered Django templates and a little JavaScript of our own.

Mount them in a URLconf (the stand-alone server mounts them at the root)::

    path("", include("gristmill.server.web.urls"))

The pages are the pipeline list, each pipeline's submission form, and each run's page; the
run page follows a live run through the REST API (:mod:`gristmill.server.api`).
"""
