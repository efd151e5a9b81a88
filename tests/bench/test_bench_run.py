"""One real tiny-model benchmark through the command line, checked through its files."""
import json
import math
import re
import subprocess
import sys

import pytest
from PIL import Image

from hieramp.bench.timing import stage_names
from hieramp.cli import main

RESULT_KEYS = {"backend", "precision", "variant", "batch_size", "s_per_img_median", "s_per_img_min", "s_per_img_max", "img_per_s",
               "peak_mem_mb"}
BATCH_SIZES = [1, 2]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", "--model", "tiny", "--backends", "torch,onnxruntime,tensorrt", "--batch-sizes", "1,2",
            "--warmup", "0", "--iters", "1", "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
            "--plot", str(out / "r.png")]
    assert main(argv) == 0
    return out, json.loads((out / "r.json").read_text())


def test_json_schema(bench_run):
    _, report = bench_run
    assert set(report) == {"machine", "settings", "results", "stages", "unavailable"}
    assert {"cpu", "cpu_cores", "memory_gb", "gpu", "versions", "date", "load_1min_before"} <= set(report["machine"])
    for r in report["results"]:
        assert set(r) == RESULT_KEYS
        assert r["s_per_img_min"] <= r["s_per_img_median"] <= r["s_per_img_max"]
        assert math.isclose(r["img_per_s"], 1 / r["s_per_img_median"])
        assert r["peak_mem_mb"] > 0
    for s in report["stages"]:
        assert set(s) == {"backend", "variant", "batch_size", "stage", "s_per_img_median"}


def test_every_backend_variant_and_batch_is_measured_or_unavailable(bench_run):
    _, report = bench_run
    measured = {r["backend"] for r in report["results"]}
    assert "torch" in measured and measured | set(report["unavailable"]) == {"torch", "onnxruntime", "tensorrt"}
    assert "CUDA" in report["unavailable"].get("tensorrt", "CUDA")
    for backend in measured:
        cells = {(r["variant"], r["batch_size"]) for r in report["results"] if r["backend"] == backend}
        assert cells == {(v, b) for v in ("base", "cls", "amp") for b in BATCH_SIZES}
        names = [s["stage"] for s in report["stages"] if (s["backend"], s["variant"], s["batch_size"]) == (backend, "amp", 1)]
        assert names == list(stage_names(4))
    assert report["settings"]["amp"] == {"mode": "logit", "beta": 5.0, "rho": 0.5, "layers": [1]}


def test_markdown_has_a_column_per_backend(bench_run):
    out, report = bench_run
    table = (out / "r.md").read_text()
    assert "| batch | variant | torch | onnxruntime | tensorrt |" in table
    assert re.search(r"\| 1 \| amp \| [0-9.e-]+ \([0-9.e-]+-[0-9.e-]+\) \|", table)
    for backend, why in report["unavailable"].items():
        assert f"`{backend}` unavailable: {why}" in table
    assert "amp over cls" in table


def test_plot_is_a_png(bench_run):
    out, _ = bench_run
    with Image.open(out / "r.png") as img:
        assert img.format == "PNG" and img.width > 1000 and img.height > 300


def test_plain_model_runs_base_only(tmp_path):
    assert main(["bench", "--model", "tiny-plain", "--warmup", "0", "--iters", "1", "--json", str(tmp_path / "r.json"),
                 "--plot", str(tmp_path / "r.png")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(r["backend"], r["variant"]) for r in report["results"]] == [("torch", "base")]
    assert set(report["settings"]["variants_skipped"]) == {"cls", "amp"}


@pytest.mark.parametrize("args,message", [
    (["--backends", "torch,jax"], "unknown backend 'jax'"),
    (["--variants", "base,big"], "unknown variant 'big'"),
    (["--batch-sizes", "0"], "batch sizes must be positive"),
    (["--iters", "0"], "--iters: measured rounds must be an integer from 1"),
    (["--model", "nosuchpreset"], "unknown model 'nosuchpreset'"),
    (["--json", "."], "is a directory: give a file name"),
])
def test_user_mistakes_exit_2_with_one_line(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "hieramp.cli", "bench", "--model", "tiny", "--plot", str(tmp_path / "p.png"),
                           *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "p.png").exists()


def test_precisions_add_columns_side_by_side(tmp_path):
    argv = ["bench", "--model", "tiny", "--backends", "torch,onnxruntime", "--precision", "fp32,bf16", "--variants", "amp",
            "--warmup", "0", "--iters", "1", "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md"),
            "--plot", str(tmp_path / "r.png")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert {(r["backend"], r["precision"]) for r in report["results"]} == {
        ("torch", "fp32"), ("torch bf16", "bf16"), ("onnxruntime", "fp32")}
    assert "bf16" in report["unavailable"]["onnxruntime bf16"]
    assert "| batch | variant | torch | torch bf16 | onnxruntime | onnxruntime bf16 |" in (tmp_path / "r.md").read_text()


def test_fp16_on_cpu_is_refused_in_one_line(tmp_path, capsys):
    assert main(["bench", "--model", "tiny", "--precision", "fp32,fp16", "--plot", str(tmp_path / "r.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "fp16 runs on GPUs only" in err and "--precision bf16" in err and len(err.splitlines()) == 1
