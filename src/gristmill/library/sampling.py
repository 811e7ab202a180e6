"""Sample mode: check a part of a big file.

:class:`Sample` writes the first N items, or N items chosen at random with a seed (reservoir
sampling: one pass, memory for N items only), to ``sample.json``, which later steps read by
naming this step in their ``source``. N comes from the pipeline parameter named ``param`` (0 or
no value: the step is skipped and later steps read the whole file), or is fixed with ``size``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.errors import DefinitionError
from gristmill.library.base import LibraryTask
from gristmill.library.reading import ItemReader

MODES = ("first", "random")


class Sample(LibraryTask):
    """Keep the first N, or a seeded random N, of the items (see the module's docstring)."""

    title = "Sample"
    description = "Takes a sample of the items, so that later steps check only those."

    def __init__(
        self,
        *,
        size: int | None = None,
        param: str | None = None,
        mode: str = "first",
        seed: int = 0,
        **options: Any,
    ):
        if mode not in MODES:
            raise DefinitionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if (size is None) == (param is None):
            raise DefinitionError("give the sample's size either as size=N or as param=NAME")
        if size is not None and size < 1:
            raise DefinitionError("size must be a positive number of items")
        self.size, self.param, self.mode, self.seed = size, param, mode, seed
        super().__init__(size=size, mode=mode, seed=seed, **options)
        self.uses = () if param is None else (param,)

    def wanted(self, run: RunContext) -> int:
        """How many items to keep for ``run`` (0: no sampling)."""
        if self.size is not None:
            return self.size
        return int(getattr(run.params, self.param or "", 0) or 0)

    def is_applicable(self, run: RunContext) -> bool:
        return self.wanted(run) > 0

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        wanted = self.wanted(run)
        reader = ItemReader(self.data(run), items=self.items)
        kept: list[Any] = []
        seen = 0
        chooser = random.Random(self.seed)
        with run.stage(f"sampling {wanted:,} items"), self.nesting(reader):
            for index, item in self.each_item(run, reader):
                seen = index + 1
                if len(kept) < wanted:
                    kept.append(item)
                else:
                    slot = chooser.randrange(seen)  # Algorithm R: each item kept with p = N/seen
                    if slot < wanted:
                        kept[slot] = item
                if self.mode == "first" and len(kept) == wanted:
                    break
            path = run.workdir / "sample.json"
            with path.open("w", encoding="utf-8") as out:
                json.dump(kept, out, ensure_ascii=False)
        run.output(path, media_type="application/json")
        run.log(f"kept {len(kept):,} items ({self.mode}) of {seen:,} read")
        return {"file": reader.file.name, "mode": self.mode, "kept": len(kept), "read": seen}

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict):
            return super().context(run, result)
        how = "the first" if result["mode"] == "first" else "a random sample of"
        return {"summary": f"Later steps check {how} {result['kept']:,} items of {result['file']}."}
