"""The use cases, above the engine: a configured gristmill (:mod:`.service`, the one place that
chooses the store from settings), submitting and reading runs (:mod:`.submission`) and deciding
what is stale (:mod:`.staleness`). Executors, the web server and the CLI are built on them."""
