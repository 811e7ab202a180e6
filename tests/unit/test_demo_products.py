"""The file products demo on the memory store: its cleaning, its plot with and without
matplotlib, and the messages for tables it cannot use."""

from __future__ import annotations

import csv
import io
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import RunStatus, get_run, submit
from gristmill.demo.products import products, svg_plot
from gristmill.executors.inline import run_inline

EXAMPLE = Path(__file__).parents[2] / "examples" / "demos" / "measurements.csv"


def run_products(
    tmp_path: Path, data: Path, params: dict[str, float] | None = None
) -> tuple[Service, RunStatus]:
    service = Service.in_memory([products], tmp_path / "data")
    run_id = submit("file-products", [data], params or {}, service=service)
    run_inline(service, run_id)
    return service, get_run(run_id, service=service)


def test_the_example_is_cleaned_and_plotted_as_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    service, status = run_products(tmp_path, EXAMPLE)

    assert status.state == "succeeded", status.error
    cleaned = status.result("CleanMeasurements")
    assert (cleaned["rows"], cleaned["kept"]) == (100, 96)
    assert cleaned["left_out"] == [
        {"reason": "a repeated row", "rows": 1},
        {"reason": "a value is missing", "rows": 1},
        {"reason": "a value is not a number", "rows": 1},
        {"reason": "the temperature is out of range", "rows": 1},
    ]
    outputs = {output.name: output for output in status.outputs}
    assert sorted(outputs) == ["plots/temperature.png", "tables/cleaned.csv"]
    png = service.storage.path(outputs["plots/temperature.png"].path).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    table = service.storage.path(outputs["tables/cleaned.csv"].path).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 96
    assert rows[0] == {
        "time": "2026-12-01T00:00",
        "station": "north",
        "temperature_c": "-1.0",
        "humidity_pct": "74",
    }


def test_without_matplotlib_the_plot_is_an_svg_and_the_log_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    service, status = run_products(tmp_path, EXAMPLE)

    assert status.state == "succeeded", status.error
    assert status.result("PlotTemperatures")["format"] == "svg"
    (plot,) = (o for o in status.outputs if o.name.startswith("plots/"))
    assert (plot.name, plot.media_type) == ("plots/temperature.svg", "image/svg+xml")
    svg = ET.fromstring(service.storage.path(plot.path).read_text(encoding="utf-8"))
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2
    assert all(len(line.attrib["points"].split()) == 48 for line in lines)
    log = [line.text for line in service.store.read_log(status.id)]
    assert any("matplotlib is not installed, so the plot is an SVG" in text for text in log)


def test_the_svg_plot_escapes_station_names() -> None:
    svg = svg_plot({"<north & co>": [1.0, 2.0], "south": [3.0]})
    root = ET.fromstring(svg)
    texts = [t.text for t in root.findall("{http://www.w3.org/2000/svg}text")]
    assert "<north & co>" in texts


def test_a_table_without_the_columns_fails_naming_them(tmp_path: Path) -> None:
    data = tmp_path / "other.csv"
    data.write_text("when,where,temp\n1,a,2\n", encoding="utf-8")
    _, status = run_products(tmp_path, data)
    assert status.state == "failed"
    assert status.error == (
        "other.csv has no column time, station, temperature_c, humidity_pct; its first row "
        "must name the columns time, station, temperature_c, humidity_pct"
    )


def test_a_table_with_nothing_left_once_cleaned_fails_saying_so(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("time,station,temperature_c,humidity_pct\nt,a,x,1\n", encoding="utf-8")
    _, status = run_products(tmp_path, data)
    assert status.state == "failed"
    assert status.error == "bad.csv has no row left to plot once cleaned"


def test_a_range_upside_down_fails_saying_so(tmp_path: Path) -> None:
    _, status = run_products(tmp_path, EXAMPLE, {"lowest": 10.0, "highest": 0.0})
    assert status.state == "failed"
    assert status.error == "lowest (10.0) must be below highest (0.0)"


def test_a_table_that_is_not_utf8_fails_saying_so(tmp_path: Path) -> None:
    data = tmp_path / "latin.csv"
    data.write_bytes("time,station,temperature_c,humidity_pct\nt,Mün\xe9,1,2\n".encode("latin-1"))
    _, status = run_products(tmp_path, data)
    assert status.state == "failed"
    assert status.error == "latin.csv is not UTF-8 text; save it as UTF-8"
