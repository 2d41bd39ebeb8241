"""scripts/bench.py: its statistics, ratios, table, README region and report, on tiny fake measurements.

No timing is asserted here: numbers belong to the benchmark (`make bench`), not to the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402

README_TEXT = f"# Kit\n\nintro\n\n{bench.MARK_START}\n(not measured yet)\n{bench.MARK_END}\n\n## Layout\nrest\n"
FAKE_MACHINE = {"cpu": "Fake CPU 3000", "cores": 2, "gpu": None, "torch": "9.9.9", "python": "3.11.0",
                "device": "cpu", "dtype": "float32", "date": "2030-01-02T03:04:05+00:00", "load_average": [0.5, 0.5, 0.5]}


def test_summarize_drops_warmup_runs_then_takes_median_min_max():
    stats = bench.summarize([100.0, 3.0, 1.0, 2.0], warmup=1)
    assert (stats["median"], stats["min"], stats["max"], stats["runs"]) == (2.0, 1.0, 3.0, 3)


def test_summarize_refuses_when_only_warmup_runs_are_left():
    with pytest.raises(ValueError):
        bench.summarize([1.0], warmup=1)


def test_paired_ratio_is_the_median_of_per_pair_ratios_not_the_ratio_of_medians():
    # per pair: 1, 5, 1 -> median 1; the ratio of the medians would be 3 / 2 = 1.5
    stats = bench.paired_ratio([1.0, 10.0, 3.0], [1.0, 2.0, 3.0])
    assert (stats["median"], stats["min"], stats["max"], stats["runs"]) == (1.0, 1.0, 5.0, 3)


def test_paired_runs_interleave_kit_and_bare_and_alternate_which_goes_first():
    calls = []
    kit_times, bare_times, last = bench.paired_runs(lambda: calls.append("kit") or "k", lambda: calls.append("bare") or "b",
                                                    pairs=3, warmup=1)
    assert calls == ["kit", "bare", "bare", "kit", "kit", "bare", "bare", "kit"]
    assert len(kit_times) == len(bare_times) == 3 and last == ("k", "b")


def test_format_table_gives_one_markdown_line_per_row_with_units_and_target_verdict():
    rows = [
        bench.row("lab1", "kit", "s", bench.summarize([0.0251, 0.0252, 0.0253])),
        bench.row("lab1", "kit / bare", "x", bench.summarize([1.01, 1.02, 1.09]), ("<=", 1.05)),
        bench.row("lab3", "reuse", "x", 2.5, (">=", 3.0)),
        bench.row("fullsize", "peak", "MB", 5500.0),
    ]
    lines = bench.format_table(rows).splitlines()
    assert lines[0].startswith("| section | measure | median |") and len(lines) == 2 + len(rows)
    assert "| 25.2 ms | 25.1 ms | 25.3 ms | 3 |" in lines[2]
    assert "1.020x" in lines[3] and "<= 1.050x: met" in lines[3]
    assert ">= 3.00x: **missed**" in lines[4]
    assert "5,500 MB" in lines[5]


def test_replace_region_rewrites_only_what_lies_between_the_markers():
    new = bench.replace_region(README_TEXT, "| a | table |")
    before, after = README_TEXT.split(bench.MARK_START)[0], README_TEXT.split(bench.MARK_END)[1]
    assert new.startswith(before + bench.MARK_START) and new.endswith(bench.MARK_END + after)
    assert "| a | table |" in new and "not measured yet" not in new


def test_replace_region_is_idempotent():
    once = bench.replace_region(README_TEXT, "table")
    assert bench.replace_region(once, "table") == once


def test_replace_region_refuses_text_without_both_markers():
    with pytest.raises(ValueError):
        bench.replace_region(README_TEXT.replace(bench.MARK_END, ""), "table")


def test_parse_notebook_times_reads_the_conftest_section():
    output = ("tests/test_x.py ....\n== notebook execution time (stand-in models) ==\n"
              "  12.5 s  notebooks/01_image_classification.ipynb\n   3.0 s  notebooks/02_object_detection.ipynb\n== 3 passed ==\n")
    assert bench.parse_notebook_times(output) == {"notebooks/01_image_classification.ipynb": 12.5,
                                                  "notebooks/02_object_detection.ipynb": 3.0}


def _fake_run(monkeypatch, tmp_path, *extra):
    monkeypatch.setattr(bench, "SECTIONS", {"fake": lambda settings: [bench.row("fake", "tiny", "s", bench.summarize([0.2, 0.1], warmup=1))]})
    monkeypatch.setattr(bench, "machine_info", lambda: dict(FAKE_MACHINE))
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT)
    monkeypatch.setattr(bench, "README", readme)
    out = tmp_path / "bench.json"
    assert bench.main(["--only", "fake", "--quick", "--out", str(out), *extra]) == 0
    return out, readme


def test_report_json_has_the_schema_for_a_tiny_fake_measurement(monkeypatch, tmp_path):
    out, _ = _fake_run(monkeypatch, tmp_path)
    report = json.loads(out.read_text())
    assert set(report) == {"schema", "tool", "machine", "settings", "seconds", "load_average_end", "rows"}
    assert report["schema"] == bench.SCHEMA and report["machine"] == FAKE_MACHINE
    assert report["settings"]["quick"] is True and report["settings"]["sections"] == ["fake"]
    [only] = report["rows"]
    assert set(only) >= {"section", "name", "unit", "median", "min", "max", "runs", "samples", "target", "ok", "note"}
    assert (only["section"], only["unit"], only["median"], only["runs"]) == ("fake", "s", 0.1, 1)


def test_update_readme_writes_the_table_and_the_machine_between_the_markers(monkeypatch, tmp_path):
    _, readme = _fake_run(monkeypatch, tmp_path, "--update-readme")
    region = readme.read_text().split(bench.MARK_START)[1].split(bench.MARK_END)[0]
    assert "Fake CPU 3000, 2 cores, no GPU; torch 9.9.9" in region and "2030-01-02" in region
    assert "| fake | tiny | 100 ms |" in region
    assert readme.read_text().endswith(README_TEXT.split(bench.MARK_END)[1])


def test_a_failing_section_is_reported_as_a_row_and_the_others_still_run(monkeypatch):
    def broken(settings):
        raise RuntimeError("no such model")

    monkeypatch.setattr(bench, "SECTIONS", {"bad": broken, "good": lambda settings: [bench.row("good", "tiny", "s", 0.1)]})
    rows = bench.run_sections(["bad", "good"], bench.Settings.make(quick=True))
    assert [r["section"] for r in rows] == ["bad", "good"]
    assert rows[0]["failed"] and "no such model" in rows[0]["name"] and rows[0]["median"] is None


def test_first_cells_stop_at_the_environment_check(tmp_path):
    cells = [{"cell_type": "markdown", "source": ["# Lab"]}]
    cells += [{"cell_type": "code", "source": [src]} for src in ("import cvkit", "cvkit.device_report()", "heavy()")]
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    assert bench.first_cells(notebook) == "import cvkit\n\ncvkit.device_report()"
