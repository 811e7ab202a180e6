"""Generate the records demo's dataset: contracting-process-like records, one JSON object per
line, with a few problems of each kind the demo checks for.

``python -m gristmill.demo.generate --items 1000000 -o records.jsonl`` writes a million records
(streamed: memory does not grow with the count); ``--later`` writes the same dataset "a month
later": about 2% of the records gone, 3% new, 5% changed (some problems fixed, a few new). The
same ``--seed`` gives the same file.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from typing import IO, Any

STATUSES = ("planning", "active", "complete", "cancelled")
CURRENCIES = ("GBP", "EUR", "USD")
BUYERS = 250
"""Distinct buyers in a dataset."""
PROBLEM_RATE = 0.01
"""The chance of each kind of problem in a record."""


def _date(rng: random.Random, year: int) -> str:
    return f"{year}-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}"


def record(number: int, rng: random.Random) -> dict[str, Any]:
    """Record ``number``: made from ``rng``, which it advances by the same amount whatever the
    problems drawn (so that two datasets made with one seed hold the same records)."""
    draws = [rng.random() for _ in range(6)]
    start = _date(rng, 2025)
    end = f"2025-12-{rng.randint(1, 28):02d}"
    buyer = rng.randrange(BUYERS)
    amount = round(rng.lognormvariate(10, 1.5), 2)
    currency = rng.choice(CURRENCIES)
    status = rng.choice(STATUSES)
    item: dict[str, Any] = {
        "ocid": f"ocds-gm-{number:08d}",
        "date": f"2026-01-{1 + number % 28:02d}",
        "buyer": {"id": f"GB-BUY-{buyer:04d}", "name": f"Buyer {buyer}"},
        "tender": {"start": start, "end": end},
        "value": {"amount": amount, "currency": currency},
        "status": status,
    }
    if draws[0] < PROBLEM_RATE:
        del item["buyer"]["name"]  # missing-field
    if draws[1] < PROBLEM_RATE:
        item["date"] = f"{1 + number % 28:02d}/01/2026"  # bad-date
    if draws[2] < PROBLEM_RATE:
        item["tender"] = {"start": end, "end": start}  # dates-out-of-order
    if draws[3] < PROBLEM_RATE:
        item["value"]["amount"] = -amount  # negative-amount
    if draws[4] < PROBLEM_RATE:
        item["value"]["currency"] = "XXX"  # unknown-currency
    if draws[5] < PROBLEM_RATE:
        item["status"] = "pending"  # unknown-status
    return item


def records(count: int, seed: int = 2026, later: bool = False) -> Iterator[dict[str, Any]]:
    """The dataset's records, one at a time; ``later`` gives the "month later" variant."""
    rng = random.Random(seed)
    changes = random.Random(seed + 1)
    for number in range(1, count + 1):
        item = record(number, rng)
        if later:
            roll = changes.random()
            if roll < 0.02:
                continue  # removed
            if roll < 0.07:
                item["status"] = "complete"  # changed: moved on, and problems fixed
                item["value"]["amount"] = abs(item["value"]["amount"])
                item["buyer"].setdefault("name", f"Buyer {item['buyer']['id'][-4:]}")
                if roll < 0.0205:
                    item["value"]["currency"] = "XXX"  # a few made worse
        yield item
    if later:
        for number in range(count + 1, count + 1 + count * 3 // 100):
            yield record(number, rng)


def write(out: IO[str], count: int, seed: int = 2026, later: bool = False) -> int:
    """Write the dataset to ``out`` as JSON Lines; return the number of records written."""
    written = 0
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    lines: list[str] = []
    for item in records(count, seed, later):
        lines.append(dumps(item))
        written += 1
        if len(lines) == 10000:
            out.write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gristmill.demo.generate",
        description="Write the records demo's dataset as JSON Lines.",
    )
    parser.add_argument("--items", type=int, default=2000, help="how many records (2000)")
    parser.add_argument("-o", "--output", default="-", help="the file to write (- for stdout)")
    parser.add_argument("--seed", type=int, default=2026, help="the random seed (2026)")
    parser.add_argument(
        "--later", action="store_true", help='the "month later" variant of the same dataset'
    )
    args = parser.parse_args(argv)
    if args.items < 0:
        parser.error("--items cannot be negative")
    if args.output == "-":
        write(sys.stdout, args.items, args.seed, args.later)
        return 0
    with open(args.output, "w", encoding="utf-8") as out:
        written = write(out, args.items, args.seed, args.later)
    print(f"wrote {written} records to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
