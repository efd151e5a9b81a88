import contextlib
import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from hieramp.cli import main

SCHEDULES = "none;5;5,5,0.5"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("analyze") / "out"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        code = main(["analyze", "--model", "tiny", "--classes", "1,3", "--ipc", "2", "--schedules", SCHEDULES,
                     "--rho", "0.25", "--seed", "5", "--grid", "--out", str(out)])
    assert code == 0
    (out.parent / "stdout.txt").write_text(stdout.getvalue())
    return out


def test_writes_json_csv_plots_and_grids(run_dir):
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["analysis.json", "coverage.png", "entropy.png", "grids", "per_scale.csv", "rise_shares.csv"]
    assert sorted(p.name for p in (run_dir / "grids").iterdir()) == ["1.png", "3.png"]
    assert Image.open(run_dir / "grids" / "3.png").size == (3 * 66 + 2, 2 * 66 + 2)     # 3 schedules x 2 seeds
    for plot in ("entropy.png", "coverage.png"):
        with Image.open(run_dir / plot) as img:
            assert img.format == "PNG" and img.size[0] > img.size[1] > 300
    assert not [p for p in run_dir.rglob(".*")]                                          # no temporary files left


def test_json_holds_settings_stages_and_per_class_values(run_dir):
    report = json.loads((run_dir / "analysis.json").read_text())
    assert report["entropy_unit"] == "bits"
    assert report["classes"] == [1, 3] and report["ipc"] == 2 and report["patch_nums"] == [1, 2, 3, 4]
    assert report["stages"] == {"coarse": [1], "mid": [2], "fine": [3]}
    assert report["settings"]["seed"] == 5 and report["settings"]["backend"] == "torch"
    by_name = {s["name"]: s for s in report["schedules"]}
    assert list(by_name) == ["none", "5", "5,5,0.5"]
    assert by_name["none"]["rise_shares"] is None and by_name["none"]["beta_per_scale"] is None
    assert by_name["5,5,0.5"]["beta_per_scale"] == [5.0, 5.0, 5.0, 0.5]
    assert by_name["5"]["rho_per_scale"] == [0.25] * 4 and by_name["5"]["amp_layers"] == [1]
    for s in report["schedules"]:
        per_class = np.array([s["per_class"][c]["entropy"] for c in ("1", "3")])       # (C, S)
        assert np.allclose(per_class.mean(axis=0), s["mean_over_classes"]["entropy"])
        assert all(0 < v <= 1 for c in ("1", "3") for v in s["per_class"][c]["coverage"])
    assert set(by_name["5"]["rise_shares"]) == {"entropy", "coverage"}


def test_csv_rows_match_the_json(run_dir):
    report = json.loads((run_dir / "analysis.json").read_text())
    by_name = {s["name"]: s for s in report["schedules"]}
    rows = list(csv.DictReader((run_dir / "per_scale.csv").open()))
    assert len(rows) == 3 * 2 * 4
    for row in rows:
        values = by_name[row["schedule"]]["per_class"][row["class"]]
        si = int(row["scale"])
        assert float(row["entropy_bits"]) == values["entropy"][si]
        assert float(row["coverage"]) == values["coverage"][si]
        assert int(row["tokens"]) == 2 * report["patch_nums"][si] ** 2
    shares = list(csv.DictReader((run_dir / "rise_shares.csv").open()))
    assert [(r["schedule"], r["stage"], r["scales"]) for r in shares] == \
        [(s, st, sc) for s in ("5", "5,5,0.5") for st, sc in (("coarse", "1"), ("mid", "2"), ("fine", "3"))]
    for r in shares:
        assert float(r["entropy_rise_share"]) == by_name[r["schedule"]]["rise_shares"]["entropy"][r["stage"]]


def test_prints_the_rise_shares_and_what_it_wrote(run_dir):
    lines = (run_dir.parent / "stdout.txt").read_text().splitlines()
    report = json.loads((run_dir / "analysis.json").read_text())
    shares = {s["name"]: s["rise_shares"] for s in report["schedules"]}
    assert lines[0] == "share of classes rising over none (entropy / coverage):"
    assert lines[1].split() == ["schedule", "coarse", "mid", "fine"]
    for line, name in zip(lines[2:4], ("5", "5,5,0.5")):
        cells = [f"{shares[name]['entropy'][st]:.0%} / {shares[name]['coverage'][st]:.0%}" for st in ("coarse", "mid", "fine")]
        assert line.split() == [name, *" ".join(cells).split()]
    assert lines[4].startswith("wrote analysis.json, per_scale.csv, rise_shares.csv, entropy.png, coverage.png and 2 grids")


@pytest.mark.parametrize("extra, message", [
    (["--schedules", "none;5,5"], "bad schedule '5,5': it has 2 betas"),
    (["--beta", "3"], "--beta does not apply to analyze: give betas in --schedules"),
    (["--no-amp"], "--no-amp does not apply to analyze"),
    (["--model", "tiny-plain"], "schedule 5 amplifies, but this model has no class tokens"),
    (["--rho", "2"], "--rho: rho must lie in (0, 1]"),
    (["--classes", "12"], "class 12 is out of range"),
])
def test_mistakes_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    argv = ["analyze", "--classes", "0", "--ipc", "1", "--schedules", "none;5", "--out", str(out)]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("hieramp analyze: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
