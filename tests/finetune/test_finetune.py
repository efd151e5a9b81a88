"""`hieramp finetune` end to end on the tiny model: learning, resume, ranks, precision, output use."""
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hieramp.cli import main
from hieramp.finetune import FinetuneSettings, RunOptions, finetune
from hieramp.finetune.run_dir import CHECKPOINT, read_log
from hieramp.model.amp_config import AmpConfig, default_amp_layers
from hieramp.model.checkpoint import load_model, read_state_dict
from hieramp.runtime.generator import Generator

SRC = Path(__file__).resolve().parents[2] / "src"


def settings_for(tiny_files, data, **overrides) -> FinetuneSettings:
    var, vae = tiny_files
    fields = dict(model=str(var), vae=str(vae), data=str(data), steps=12, batch_size=6, lr=3e-3)
    fields.update(overrides)
    return FinetuneSettings(**fields)


def run(settings, out, **options):
    return finetune(settings, RunOptions(out=out, progress=False, log_every=1, **options))


def weights(out):
    return torch.load(out / CHECKPOINT, weights_only=True)


def test_loss_falls_and_class_tokens_learn_the_classes(tiny_files, image_folder, tmp_path):
    out = tmp_path / "run"
    run(settings_for(tiny_files, image_folder, steps=40), out)
    log = read_log(out)
    assert [r["step"] for r in log] == list(range(1, 41))
    first, last = log[0], log[-1]
    assert sum(r["loss"] for r in log[-5:]) < sum(r["loss"] for r in log[:5])
    assert last["cls_loss"] < first["cls_loss"]
    assert len(last["cls_acc"]) == 4 and sum(last["cls_acc"]) / 4 > 100 / 3 + 15          # chance: 33 %
    assert {"epoch", "lr", "token_loss", "token_acc", "token_acc_last", "grad_norm", "img_s", "cpu_s",
            "peak_mem_mb"} <= set(last)
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["settings"]["steps"] == 40 and run_json["images"] == 24 and run_json["classes"] == [0, 1, 2]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_the_output_generates_with_amplification(tiny_files, image_folder, tmp_path):
    out = tmp_path / "run"
    run(settings_for(tiny_files, image_folder, steps=3), out)
    raw = weights(out)
    assert {"trainer", "step", "epoch", "rng", "data", "settings"} <= set(raw)
    assert {"var_wo_ddp", "var_opt"} <= set(raw["trainer"])
    state = read_state_dict(out / CHECKPOINT)
    assert state["class_head.weight"].shape == (10, 32) and "cls_tokens.3" in state
    model = load_model(out / CHECKPOINT, tiny_files[1])
    assert model.cfg.cls_token_scales == (0, 1, 2, 3)
    amp = AmpConfig(layers=default_amp_layers(model.cfg.depth))
    images = Generator(model).run([0, 1, 2], seed=0, amp=amp).images
    assert images.shape == (3, 3, 8, 8) and torch.isfinite(images).all()
    gen = tmp_path / "gen"
    assert main(["generate", "--model", str(out / CHECKPOINT), "--vae", str(tiny_files[1]), "--classes", "0-2",
                 "--out", str(gen)]) == 0                                        # amplification is on by default
    assert len(list(gen.glob("*/*.png"))) == 3


def test_a_run_interrupted_after_a_save_continues_to_the_same_weights(tiny_files, image_folder, tmp_path):
    settings = settings_for(tiny_files, image_folder, steps=9)
    whole = tmp_path / "whole"
    run(settings, whole, save_every=4)

    def kill(step):
        if step == 4:
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        finetune(settings, RunOptions(out=cut, progress=False, log_every=1, save_every=4), after_save=kill)
    assert weights(cut)["step"] == 4
    var, vae = tiny_files
    argv = ["finetune", "--model", str(var), "--vae", str(vae), "--data", str(image_folder), "--out", str(cut),
            "--steps", "9", "--batch-size", "6", "--lr", "3e-3", "--save-every", "4", "--log-every", "1",
            "--workers", "1", "--no-progress"]
    assert main(argv) == 0                                                   # the same command continues the run
    a, b = weights(whole), weights(cut)
    assert b["step"] == 9
    for key, value in a["trainer"]["var_wo_ddp"].items():
        assert torch.equal(value, b["trainer"]["var_wo_ddp"][key]), key
    opt_a, opt_b = a["trainer"]["var_opt"]["optimizer"]["state"], b["trainer"]["var_opt"]["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)
    log_a, log_b = read_log(whole), read_log(cut)
    assert [r["step"] for r in log_b] == list(range(1, 10))
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    assert main(argv) == 0 and weights(cut)["step"] == 9                     # finished: nothing more to do


@pytest.mark.slow
def test_two_gloo_ranks_end_with_the_weights_of_one(tiny_files, image_folder, tmp_path):
    var, vae = tiny_files
    args = ["finetune", "--model", str(var), "--vae", str(vae), "--data", str(image_folder), "--steps", "4",
            "--batch-size", "6", "--lr", "3e-3", "--workers", "0", "--no-progress", "--log-every", "1"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "hieramp"]
    done = subprocess.run(cmd + args + ["--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    assert main(args + ["--out", str(tmp_path / "accum"), "--accum", "2"]) == 0
    one = weights(tmp_path / "one")["trainer"]["var_wo_ddp"]
    for other in ("two", "accum"):
        theirs = weights(tmp_path / other)["trainer"]["var_wo_ddp"]
        for key, value in one.items():
            torch.testing.assert_close(theirs[key], value, rtol=1e-4, atol=1e-5, msg=f"{other}: {key}")
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    log_one, log_two = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert [r["loss"] for r in log_two] == pytest.approx([r["loss"] for r in log_one], rel=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precisions_run_on_the_cpu(tiny_files, image_folder, tmp_path, precision):
    out = tmp_path / "run"
    run(settings_for(tiny_files, image_folder, steps=3, precision=precision), out)
    log = read_log(out)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    assert ("scaler" in weights(out)["trainer"]["var_opt"]) == (precision == "fp16")
    assert json.loads((out / "run.json").read_text())["precision"] == precision


def test_plain_baseline_and_continuing_a_fine_tune(tiny_files, image_folder, tmp_path):
    plain = tmp_path / "plain"
    run(settings_for(tiny_files, image_folder, steps=2, cls_scales=()), plain)
    state = read_state_dict(plain / CHECKPOINT)
    assert not any(k.startswith(("cls_tokens", "class_head")) for k in state)
    assert "cls_loss" not in read_log(plain)[-1]
    first = tmp_path / "first"
    run(settings_for(tiny_files, image_folder, steps=2, cls_scales=(1, 3)), first)
    again = tmp_path / "again"
    settings = settings_for(tiny_files, image_folder, steps=1, cls_scales=(1, 3), model=str(first / CHECKPOINT), lr=1e-9)
    run(settings, again)
    before, after = read_state_dict(first / CHECKPOINT), read_state_dict(again / CHECKPOINT)
    assert set(before) == set(after)
    torch.testing.assert_close(after["cls_tokens.3"], before["cls_tokens.3"], atol=1e-6, rtol=0)
    torch.testing.assert_close(after["class_head.weight"], before["class_head.weight"], atol=1e-6, rtol=0)


def test_unreadable_images_are_skipped_and_counted(tiny_files, tmp_path, make_image_folder):
    data = make_image_folder(tmp_path / "data", per_class=3)
    (data / "1" / "broken.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "run"
    run(settings_for(tiny_files, data, steps=2, batch_size=10), out)             # every batch holds all 10 files
    assert [r["unreadable"] for r in read_log(out)] == [1, 2]
