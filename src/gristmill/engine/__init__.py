"""The engine: runs units of work against a store. Plain Python; never imports Django."""
