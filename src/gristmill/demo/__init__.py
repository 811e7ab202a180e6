"""Demo pipelines that ``gristmill serve`` offers when no pipelines are configured."""
