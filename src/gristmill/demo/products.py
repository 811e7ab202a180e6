"""The file products demo: a table of measurements in, a cleaned table and a plot out.

The plot is a PNG drawn by matplotlib when it is installed (``pip install 'gristmill[plots]'``),
otherwise an SVG drawn here, so the demo works with nothing else installed; the step's result
and log say which. See docs/demos/products.md."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from gristmill import Inputs, Pipeline, RunContext, Task, TaskError

COLUMNS = ("time", "station", "temperature_c", "humidity_pct")


class ProductsParams(BaseModel):
    """Parameters of the file products demo."""

    model_config = {"extra": "forbid"}

    lowest: float = Field(-60.0, description="Temperatures below this (°C) are left out")
    highest: float = Field(60.0, description="Temperatures above this (°C) are left out")


class CleanMeasurements(Task):
    """Reads the table, leaves out rows that are incomplete, not numbers, out of range or
    repeated, and writes the rest to ``tables/cleaned.csv``."""

    title = "Clean the measurements"
    needs = ()
    uses = ("lowest", "highest")

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        name = run.input.name
        params = run.params
        if params.lowest >= params.highest:
            raise TaskError(f"lowest ({params.lowest}) must be below highest ({params.highest})")
        kept: list[dict[str, str]] = []
        reasons: dict[str, int] = {}
        seen: set[tuple[str, ...]] = set()
        with run.stage("reading the table"):
            try:
                with run.input.open("r") as text:
                    reader = csv.DictReader(text)
                    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
                    if missing:
                        raise TaskError(
                            f"{name} has no column {', '.join(missing)}; its first row must "
                            f"name the columns {', '.join(COLUMNS)}"
                        )
                    for line, row in enumerate(reader, start=2):
                        reason = self._reason(row, seen, params.lowest, params.highest)
                        if reason is None:
                            kept.append({c: row[c].strip() for c in COLUMNS})
                        else:
                            reasons[reason] = reasons.get(reason, 0) + 1
                            run.log(f"line {line} left out: {reason}")
            except UnicodeDecodeError:
                raise TaskError(f"{name} is not UTF-8 text; save it as UTF-8") from None
            except csv.Error as error:
                raise TaskError(f"{name} is not a readable CSV table: {error}") from None
        if not kept:
            raise TaskError(f"{name} has no row left to plot once cleaned")
        with run.stage("writing the cleaned table"):
            path = run.workdir / "tables" / "cleaned.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, COLUMNS)
                writer.writeheader()
                writer.writerows(kept)
            run.output(path, media_type="text/csv")
        run.log(f"{len(kept)} rows kept, {sum(reasons.values())} left out")
        return {
            "rows": len(kept) + sum(reasons.values()),
            "kept": len(kept),
            "left_out": [{"reason": r, "rows": n} for r, n in sorted(reasons.items())],
            "stations": sorted({row["station"] for row in kept}),
        }

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        return {
            "summary": f"{result['kept']:,} of {result['rows']:,} rows kept, in tables/cleaned.csv",
            "left out": result["left_out"],
            "stations": ", ".join(result["stations"]),
        }

    @staticmethod
    def _reason(
        row: dict[str, str], seen: set[tuple[str, ...]], lowest: float, highest: float
    ) -> str | None:
        values = tuple((row.get(c) or "").strip() for c in COLUMNS)
        if any(not value for value in values):
            return "a value is missing"
        try:
            temperature = float(row["temperature_c"])
            float(row["humidity_pct"])
        except ValueError:
            return "a value is not a number"
        if not math.isfinite(temperature) or not lowest <= temperature <= highest:
            return "the temperature is out of range"
        if values in seen:
            return "a repeated row"
        seen.add(values)
        return None


class PlotTemperatures(Task):
    """Draws each station's temperature over time from the cleaned table: ``plots/...``."""

    title = "Plot the temperatures"
    needs = ("CleanMeasurements",)
    uses = ()

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        (cleaned,) = run.upstream_files("CleanMeasurements")
        series: dict[str, list[float]] = {}
        with run.stage("reading the cleaned table"), cleaned.open("r") as text:
            for row in csv.DictReader(text):
                series.setdefault(row["station"], []).append(float(row["temperature_c"]))
        (run.workdir / "plots").mkdir(parents=True, exist_ok=True)
        with run.stage("drawing the plot"):
            try:
                import matplotlib
            except ImportError:
                run.log(
                    "matplotlib is not installed, so the plot is an SVG; for a PNG, "
                    "pip install 'gristmill[plots]'"
                )
                path = run.workdir / "plots" / "temperature.svg"
                path.write_text(svg_plot(series), encoding="utf-8")
                kind = "svg"
            else:
                path = run.workdir / "plots" / "temperature.png"
                png_plot(matplotlib, series, path)
                kind = "png"
        run.output(path, media_type=f"image/{'svg+xml' if kind == 'svg' else 'png'}")
        run.log(f"plotted {sum(len(v) for v in series.values())} points of {len(series)} stations")
        return {
            "plot": path.name,
            "format": kind,
            "stations": {k: len(v) for k, v in series.items()},
        }

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        points = ", ".join(f"{n} points of {s}" for s, n in result["stations"].items())
        return {"summary": f"plots/{result['plot']} ({result['format'].upper()}): {points}"}


def png_plot(matplotlib: Any, series: Mapping[str, list[float]], path: Path) -> None:
    """Draws the series as a PNG with matplotlib (no display needed)."""
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    axes = figure.subplots()
    for station, values in sorted(series.items()):
        axes.plot(range(len(values)), values, label=station)
    axes.set_xlabel("measurement")
    axes.set_ylabel("temperature (°C)")
    axes.legend()
    figure.savefig(path, format="png")


COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def svg_plot(series: Mapping[str, list[float]], width: int = 800, height: int = 400) -> str:
    """Draws the series as lines in an SVG document, with the range and a legend."""
    values = [v for vs in series.values() for v in vs]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    longest = max(len(vs) for vs in series.values())
    left, top, inner_w, inner_h = 60, 20, width - 80, height - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="none" '
        'stroke="#999"/>',
        f'<text x="5" y="{top + 10}">{high:.1f} °C</text>',
        f'<text x="5" y="{top + inner_h}">{low:.1f} °C</text>',
    ]
    for number, (station, vs) in enumerate(sorted(series.items())):
        colour = COLOURS[number % len(COLOURS)]
        points = " ".join(
            f"{left + inner_w * i / max(longest - 1, 1):.1f},"
            f"{top + inner_h * (1 - (v - low) / span):.1f}"
            for i, v in enumerate(vs)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" points="{points}"/>')
        y = height - 20 + 0 * number
        x = left + 120 * number
        parts.append(f'<text x="{x}" y="{y + 12}" fill="{colour}">{escape(station)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


products = Pipeline(
    "file-products",
    [CleanMeasurements, PlotTemperatures],
    title="File products",
    description=(
        "Cleans a CSV table of temperature measurements and plots it: the cleaned table and "
        "the plot are the run's files."
    ),
    inputs=Inputs(kinds=["file", "text", "url"], extensions=["csv"], max_size=50 * 1024**2),
    params=ProductsParams,
)
