"""DiT through the same commands as VAR: generate, export, compare, distill, analyze (refused)."""
import json
import re
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from hieramp.cli import main

TINY = ["--model", "dit-tiny", "--steps", "3"]


def error_line(capsys, argv):
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_generate_writes_images_and_beta_one_is_no_amp(tmp_path):
    for name, extra in (("off", ["--no-amp"]), ("one", ["--beta", "1"]), ("five", [])):
        assert main(["generate", *TINY, "--classes", "1,4", "--per-class", "2", "--batch-size", "3",
                     "--out", str(tmp_path / name), *extra]) == 0
    img = np.asarray(Image.open(tmp_path / "five" / "4" / "1.png"))
    assert img.shape == (16, 16, 3) and img.std() > 0 and (tmp_path / "five" / "grid.png").is_file()
    for f in ("1/0.png", "1/1.png", "4/0.png", "4/1.png"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "off" / f).read_bytes()
    assert (tmp_path / "five" / "1/0.png").read_bytes() != (tmp_path / "off" / "1/0.png").read_bytes()


def test_the_backbone_is_recognised_from_the_checkpoint(tmp_path, tiny_dit_files, capsys):
    dit_file, vae_dir = tiny_dit_files
    argv = ["generate", "--model", str(dit_file), "--vae", str(vae_dir), "--steps", "2", "--classes", "3", "--out"]
    assert main([*argv, str(tmp_path / "a"), "--heads", "2"]) == 0
    assert main(["generate", *TINY[:2], "--steps", "2", "--classes", "3", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a/3/0.png").read_bytes() == (tmp_path / "b/3/0.png").read_bytes()   # the same weights
    assert "not an official DiT size" in error_line(capsys, [*argv, str(tmp_path / "c")])


def test_export_then_onnxruntime_generate_and_compare(tmp_path, capsys):
    export = tmp_path / "export"
    assert main(["export", "--model", "dit-tiny", "--amp-layers", "1", "--out", str(export)]) == 0
    assert json.loads((export / "manifest.json").read_text())["amp"]["layers"] == [1]
    for backend in ("torch", "onnxruntime"):
        artifact = ["--export", str(export)] if backend == "onnxruntime" else []
        assert main(["generate", *TINY, "--amp-layers", "1", "--classes", "2", "--backend", backend, *artifact,
                     "--out", str(tmp_path / backend)]) == 0
    a, b = (np.asarray(Image.open(tmp_path / name / "2/0.png"), dtype=int) for name in ("torch", "onnxruntime"))
    assert np.abs(a - b).max() <= 1
    capsys.readouterr()
    assert main(["compare", *TINY, "--export", str(export), "--classes", "0-1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and [s["mask_agreement"] for s in report["steps"]] == [None, 1.0, 1.0]
    assert main(["compare", *TINY, "--export", str(export), "--classes", "0", "--max-output-error", "0", "--json"]) == 1
    capsys.readouterr()
    assert "amplifies blocks [1], this run asks for [2]" in error_line(
        capsys, ["generate", *TINY, "--classes", "0", "--backend", "onnxruntime", "--export", str(export), "--amp-layers", "2",
                 "--out", str(tmp_path / "x")])


def test_distill_resumes_and_records_the_dit_settings(tmp_path):
    argv = ["distill", *TINY, "--classes", "0-2", "--ipc", "2", "--save-size", "16", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = {p.name: p.read_bytes() for p in tmp_path.rglob("*.png")}
    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and lines[0]["sampling"] == {"cfg": 4.0, "steps": 3, "sampler": "ddpm"}
    assert lines[0]["amp"]["source"] == "cfg-diff" and lines[0]["amp"]["steps"] == [1, 2]
    (tmp_path / "1" / "1.png").unlink()
    assert main([*argv, "--batch-size", "1"]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*.png")} == first


def test_file_masks_through_the_command_line(tmp_path, capsys):
    masks = tmp_path / "masks"
    (masks / "5").mkdir(parents=True)
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(masks / "5" / "0.png")
    assert main(["generate", *TINY, "--classes", "5", "--dit-mask", f"file:{masks}", "--out", str(tmp_path / "ok")]) == 0
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(masks / "5" / "0.png")
    assert "is 12x12: masks must be 16x16 (the image) or 4x4" in error_line(
        capsys, ["generate", *TINY, "--classes", "5", "--dit-mask", f"file:{masks}", "--out", str(tmp_path / "bad")])


def test_bad_inputs_exit_2_with_one_line(tmp_path, tiny_dit_files, capsys):
    dit_file, vae_dir = tiny_dit_files
    var_file = tmp_path / "var_d16.pth"
    torch.save({"word_embed.weight": torch.zeros(4, 2), "lvl_1L": torch.zeros(1, 1)}, var_file)
    out = ["--classes", "0", "--out", str(tmp_path / "out")]
    cases = [
        (["--model", str(var_file), "--vae", str(vae_dir)], "is a VAR checkpoint: pass its VQVAE file"),
        (["--model", str(dit_file), "--vae", str(tmp_path), "--heads", "2"], "is not a diffusers VAE directory"),
        (["--model", str(dit_file), "--vae", str(dit_file)], "is a DiT checkpoint: pass its VAE directory"),
        ([*TINY, "--top-k", "5"], "--top-k applies to VAR models; dit-tiny is a DiT model"),
        (["--model", "tiny", "--steps", "5"], "--steps applies to DiT models; tiny is a VAR model"),
        ([*TINY, "--backend", "tensorrt", "--engine", str(tmp_path)], "the tensorrt backend runs on a CUDA GPU, not cpu: pass --device cuda"),
        ([*TINY, "--dit-mask", "saliency"], "unknown --dit-mask 'saliency'"),
        ([*TINY, "--beta", "5,5,1"], "--beta takes one value for DiT"),
        ([*TINY, "--amp-steps", "0-2"], "step 0 cannot be amplified"),
    ]
    for args, message in cases:
        line = error_line(capsys, ["generate", *args, *out])
        assert re.search(re.escape(message), line), line
    assert not (tmp_path / "out").exists()
    assert "DiT model, which has no tokens" in error_line(capsys, ["analyze", *TINY, "--classes", "0", "--out", str(tmp_path / "an")])


def test_a_user_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hieramp.cli", "generate", *TINY, "--sampler", "heun", "--classes", "0",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "invalid choice: 'heun'" in proc.stderr


def test_bench_runs_the_dit_variants(tmp_path):
    assert main(["bench", "--model", "dit-tiny", "--steps", "2", "--backends", "torch,onnxruntime", "--warmup", "0",
                 "--iters", "1", "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["backbone"] == "dit" and report["settings"]["sampling"]["steps"] == 2
    assert set(report["settings"]["variants"]) == {"base", "amp"} and "cls" in report["settings"]["variants_skipped"]
    assert {(r["backend"], r["variant"]) for r in report["results"]} == {(b, v) for b in ("torch", "onnxruntime") for v in ("base", "amp")}
    assert {s["stage"] for s in report["stages"]} >= {"step 0", "step 1", "decode"}
    assert Image.open(tmp_path / "r.png").size[0] > 0


def test_the_dit_xl_2_preset_reads_the_official_files(tmp_path, tiny_dit_files, monkeypatch, capsys):
    dit_file, vae_dir = tiny_dit_files
    monkeypatch.setenv("HIERAMP_CHECKPOINTS", str(tmp_path))
    argv = ["generate", "--model", "dit-xl-2", "--heads", "2", "--steps", "2", "--classes", "1", "--out"]
    assert "preset dit-xl-2 needs" in error_line(capsys, [*argv, str(tmp_path / "a")])
    (tmp_path / "DiT-XL-2-256x256.pt").symlink_to(dit_file)       # a small file in the official place
    (tmp_path / "sd-vae-ft-mse").symlink_to(vae_dir)
    assert main([*argv, str(tmp_path / "b")]) == 0 and (tmp_path / "b" / "1" / "0.png").is_file()
