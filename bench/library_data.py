"""The data the library benchmarks check: procurement-like items and a schema for them.

``write_items(path, count)`` writes a JSON array of ``count`` items of about 500 bytes each
(200,000 items: about 100 MB); one item in a hundred breaks the schema in two places.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "date", "buyer", "parties", "value"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "date": {"type": "string", "format": "date"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "status": {"enum": ["planned", "active", "complete", "cancelled"]},
        "buyer": {"$ref": "#/$defs/party"},
        "parties": {"type": "array", "items": {"$ref": "#/$defs/party"}, "minItems": 1},
        "value": {
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        },
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "$defs": {
        "party": {
            "type": "object",
            "required": ["id", "name"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string"}},
                "address": {
                    "type": "object",
                    "properties": {
                        "street": {"type": "string"},
                        "locality": {"type": "string"},
                        "country": {"type": "string"},
                    },
                },
            },
        }
    },
}

_WORDS = [
    "mill",
    "grist",
    "grain",
    "flour",
    "stone",
    "wheel",
    "water",
    "river",
    "bread",
    "sack",
    "yard",
    "barn",
    "field",
]


def item(number: int, chooser: random.Random) -> dict[str, Any]:
    """One item; every hundredth has a numeric party name and a lower-case currency."""
    broken = number % 100 == 99
    parties = [
        {
            "id": f"party-{number}-{p}",
            "name": number if broken and p == 1 else " ".join(chooser.choices(_WORDS, k=3)),
            "roles": ["supplier"] if p else ["buyer"],
            "address": {"street": f"{p + 1} Mill Lane", "locality": "Grist", "country": "GB"},
        }
        for p in range(2)
    ]
    return {
        "id": f"item-{number:07d}",
        "date": "2026-12-06",
        "title": " ".join(chooser.choices(_WORDS, k=4)),
        "description": " ".join(chooser.choices(_WORDS, k=6)),
        "status": chooser.choice(["planned", "active", "complete"]),
        "buyer": {"id": parties[0]["id"], "name": parties[0]["name"]},
        "parties": parties,
        "value": {
            "amount": round(chooser.random() * 1e6, 2),
            "currency": "gbp" if broken else "GBP",
        },
        "tags": chooser.choices(_WORDS, k=2),
    }


def write_items(path: Path, count: int, seed: int = 11) -> Path:
    """Write ``count`` items as one JSON array to ``path``."""
    chooser = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for number in range(count):
            out.write(",\n" if number else "\n")
            out.write(json.dumps(item(number, chooser)))
        out.write("\n]\n")
    return path
