"""scripts/bench.py: medians with their distribution-free intervals, paired kit / bare ratios, verdicts that need the
whole interval, the Markdown table, the README region it rewrites and the JSON report, on tiny fake measurements;
a failing section reported as a row; and one quick run of the Lab 2 section, given the stand-in YOLO11n's weights.

No timing is asserted here: numbers belong to the benchmark (`make bench`), not to the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bench
import pytest

ROOT = Path(__file__).resolve().parents[1]

README_TEXT = f"# Kit\n\nintro\n\n{bench.MARK_START}\n(not measured yet)\n{bench.MARK_END}\n\n## Layout\nrest\n"
FAKE_MACHINE = {"cpu": "Fake CPU 3000", "cores": 2, "gpu": None, "torch": "9.9.9", "python": "3.11.0",
                "device": "cpu", "dtype": "float32", "date": "2030-01-02T03:04:05+00:00", "load_average": [0.5, 0.5, 0.5]}


def test_summary_takes_median_and_iqr_from_the_measurement_times_the_scale():
    stats = bench.summary(bench.measurement([1.0, 2.0, 3.0, 4.0, 5.0]), scale=0.5)
    assert (stats["median"], stats["iqr"], stats["runs"]) == (1.5, 1.0, 5)


def test_median_interval_runs_from_the_6th_to_the_16th_of_21_values():
    assert bench.median_interval([float(v) for v in range(21, 0, -1)]) == (6.0, 16.0)


def test_median_interval_is_none_for_five_values_or_fewer():
    # even the min and max of 5 values cover the median with only 1 - 2 / 2**5 = 94 % confidence
    assert bench.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    assert bench.median_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == (1.0, 6.0)


def test_paired_ratio_is_the_median_of_per_pair_ratios_not_the_ratio_of_medians():
    # per pair: 1, 5, 1 -> median 1; the ratio of the medians would be 3 / 2 = 1.5
    stats = bench.paired_ratio([1.0, 10.0, 3.0], [1.0, 2.0, 3.0])
    assert (stats["median"], stats["runs"], stats["samples"]) == (1.0, 3, [1.0, 5.0, 1.0])


def test_paired_times_interleave_kit_and_bare_and_alternate_which_goes_first():
    calls = []
    kit_times, bare_times = bench.paired_times(lambda: calls.append("kit"), lambda: calls.append("bare"), pairs=3)
    assert calls == ["kit", "bare", "bare", "kit", "kit", "bare"]
    assert len(kit_times) == len(bare_times) == 3


@pytest.mark.parametrize(("interval", "expected"), [
    ((0.98, 1.04), "met"),
    ((1.06, 1.20), "missed"),
    ((0.95, 1.10), "inconclusive"),
    (None, "inconclusive"),
])
def test_a_ratio_meets_its_target_only_when_its_whole_interval_does(interval, expected):
    assert bench.verdict(interval, "<=", 1.05) == expected


def test_format_table_gives_one_markdown_line_per_row_with_iqr_and_verdict_with_its_interval():
    ratios = [1.0 + i / 100 for i in range(21)]  # 95 % interval 1.05x to 1.15x
    rows = [
        bench.row("lab1", "kit", "s", bench.summary(bench.measurement([0.025, 0.026, 0.027]))),
        bench.row("lab1", "kit / bare", "x", bench.summary(bench.measurement([1.0] * 6)), ("<=", 1.05)),
        bench.row("lab2", "kit / bare", "x", bench.summary(bench.measurement(ratios)), ("<=", 1.05)),
        bench.row("lab3", "kit / bare", "x", bench.summary(bench.measurement([0.9, 1.2, 1.0])), ("<=", 1.05)),
        bench.row("fullsize", "peak", "MB", 5500.0),
    ]
    lines = bench.format_table(rows).splitlines()
    assert lines[0] == "| section | measure | median | IQR | runs | target |" and len(lines) == 2 + len(rows)
    assert "| 26 ms | 1 ms | 3 |" in lines[2]
    assert "<= 1.050x: met (95 % interval 1.000x to 1.000x)" in lines[3]
    assert "<= 1.050x: inconclusive (95 % interval 1.050x to 1.150x)" in lines[4]
    assert "<= 1.050x: inconclusive (too few runs (3) for a 95 % interval)" in lines[5]
    assert "| 5,500 MB | - | 1 |" in lines[6]


def test_format_table_marks_a_missed_target():
    r = bench.row("lab1", "kit / bare", "x", bench.summary(bench.measurement([2.0] * 6)), ("<=", 1.05))
    assert "<= 1.050x: **missed** (95 % interval 2.00x to 2.00x)" in bench.format_table([r])


def _results(*boxes):
    import numpy as np
    import torch
    from ultralytics.engine.results import Results

    return [Results(np.zeros((64, 64, 3), np.uint8), path="x.jpg", names={0: "person"},
                    boxes=torch.tensor(b, dtype=torch.float32).reshape(-1, 6)) for b in boxes]


def test_same_boxes_counts_the_boxes_both_paths_found():
    box = [[1, 2, 30, 40, 0.9, 0]]
    assert bench.same_boxes(_results(box, box + box), _results(box, box + box)) == "same 3 boxes on 2/2 images"


def test_same_boxes_refuses_different_boxes():
    with pytest.raises(RuntimeError, match="different boxes"):
        bench.same_boxes(_results([[1, 2, 30, 40, 0.9, 0]]), _results([[1, 2, 30, 45, 0.9, 0]]))


def test_same_boxes_refuses_detections_that_are_all_empty():
    with pytest.raises(RuntimeError, match="no boxes"):
        bench.same_boxes(_results([], []), _results([], []))


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


def _fake_run(monkeypatch, tmp_path, *extra):
    tiny = bench.summary(bench.measurement([0.1, 0.3]))
    monkeypatch.setattr(bench, "SECTIONS", {"fake": lambda settings: [bench.row("fake", "tiny", "s", tiny)]})
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
    assert set(only) >= {"section", "name", "unit", "median", "iqr", "runs", "interval", "samples", "target",
                         "verdict", "note"}
    assert (only["section"], only["unit"], only["median"], only["runs"]) == ("fake", "s", 0.2, 2)


def test_update_readme_writes_the_table_and_the_machine_between_the_markers(monkeypatch, tmp_path):
    _, readme = _fake_run(monkeypatch, tmp_path, "--update-readme")
    region = readme.read_text().split(bench.MARK_START)[1].split(bench.MARK_END)[0]
    assert "Fake CPU 3000, 2 cores, no GPU; torch 9.9.9" in region and "2030-01-02" in region
    assert "| fake | tiny | 200 ms | 100 ms | 2 |" in region
    assert readme.read_text().endswith(README_TEXT.split(bench.MARK_END)[1])


def test_a_failing_section_is_reported_as_a_row_and_the_others_still_run(monkeypatch):
    def broken(settings):
        raise RuntimeError("no such model")

    monkeypatch.setattr(bench, "SECTIONS", {"bad": broken, "good": lambda settings: [bench.row("good", "tiny", "s", 0.1)]})
    rows = bench.run_sections(["bad", "good"], bench.QUICK)
    assert [r["section"] for r in rows] == ["bad", "good"]
    assert rows[0]["failed"] and "no such model" in rows[0]["name"] and rows[0]["median"] is None


def test_first_cells_stop_at_the_environment_check(tmp_path):
    cells = [{"cell_type": "markdown", "source": ["# Lab"]}]
    cells += [{"cell_type": "code", "source": [src]} for src in ("import cvkit", "cvkit.device_report()", "heavy()")]
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    assert bench.first_cells(notebook) == "import cvkit\n\ncvkit.device_report()\n"


def test_first_cells_turn_the_setup_cells_magics_into_python(tmp_path):
    cells = [{"cell_type": "code", "source": ["if False:\n    %pip install -q x\n    !git clone y\ncvkit.device_report()"]}]
    notebook = tmp_path / "01_x.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    code = bench.first_cells(notebook)
    compile(code, "first_cells", "exec")  # plain Python now
    assert "get_ipython().run_line_magic('pip', 'install -q x')" in code and "get_ipython().system('git clone y')" in code


@pytest.mark.standins("yolo")
def test_quick_lab2_run_finds_the_same_nonzero_boxes_on_both_paths(tmp_path):
    weights = Path(os.environ["YOLO_CONFIG_DIR"]) / "weights" / "yolo11n.pt"  # the stand-in: it finds boxes
    path = os.pathsep.join(filter(None, [str(ROOT / "notebooks"), os.environ.get("PYTHONPATH")]))  # this checkout's cvkit
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--only", "lab2", "--yolo",
                           str(weights), "--out", str(out)], env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"].split(":")[0] for r in rows] == ["kit", "bare", "kit / bare"]
    assert rows[2]["note"].startswith("same ") and int(rows[2]["note"].split()[1]) > 0
