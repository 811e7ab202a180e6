#!/usr/bin/env python
"""Which JSON Schema validator the library uses: speed and the paths each reports.

    python bench/validators.py [--items 20000]

On the same items (bench/library_data.py, already parsed, in memory) it times:

* ``jsonschema`` (``iter_errors``: every error, with paths),
* ``jsonschema-rs`` (``iter_errors``: every error, with paths),
* ``fastjsonschema`` (compiled; raises at an item's first error, so it cannot list all),

and prints items per second and, for one broken item, the errors each reports: their count and
their paths. Needs ``pip install 'gristmill[library]' fastjsonschema``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from library_data import SCHEMA, item  # noqa: E402 - after the path is set


def _jsonschema() -> Callable[[Any], list[tuple[str, str]]]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(SCHEMA)

    def check(value: Any) -> list[tuple[str, str]]:
        return [
            (str(e.validator), "/".join(map(str, e.absolute_path)))
            for e in validator.iter_errors(value)
        ]

    return check


def _jsonschema_rs() -> Callable[[Any], list[tuple[str, str]]]:
    import jsonschema_rs

    validator = jsonschema_rs.validator_for(SCHEMA)

    def check(value: Any) -> list[tuple[str, str]]:
        return [
            (str(e.schema_path[-1]), "/".join(map(str, e.instance_path)))
            for e in validator.iter_errors(value)
        ]

    return check


def _fastjsonschema() -> Callable[[Any], list[tuple[str, str]]]:
    import fastjsonschema

    validate = fastjsonschema.compile(SCHEMA)

    def check(value: Any) -> list[tuple[str, str]]:
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException as error:
            return [(str(error.rule), "/".join(map(str, error.path[1:])))]
        return []

    return check


VALIDATORS = {
    "jsonschema": _jsonschema,
    "jsonschema-rs": _jsonschema_rs,
    "fastjsonschema": _fastjsonschema,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    import random

    chooser = random.Random(11)
    items = [item(number, chooser) for number in range(args.items)]
    broken = items[99]
    print(f"{args.items:,} items, {sum(1 for n in range(args.items) if n % 100 == 99):,} broken")
    print(f"{'validator':<16}{'items/s':>12}  errors in a broken item")
    for name, make in VALIDATORS.items():
        check = make()
        started = time.perf_counter()
        errors = 0
        for value in items:
            errors += len(check(value))
        elapsed = time.perf_counter() - started
        found = check(broken)
        shown = ", ".join(f"{keyword} at {path or '(root)'}" for keyword, path in found)
        print(f"{name:<16}{args.items / elapsed:>12,.0f}  {len(found)}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
