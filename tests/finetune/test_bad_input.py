"""Mistakes in a `hieramp finetune` command: one line, exit code 2, nothing written."""
import pytest
import torch

from hieramp.cli import main
from hieramp.model.vqvae import VQVAE
from hieramp.train.vqvae import DIGITS_VAE


def command(tiny_files, data, out, *extra):
    var, vae = tiny_files
    return ["finetune", "--model", str(var), "--vae", str(vae), "--data", str(data), "--out", str(out), "--steps", "1",
            "--batch-size", "6", "--workers", "0", "--no-progress", *extra]


def refused(argv, capsys, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("layout, extra, message", [
    ("missing", (), "is not a directory"),
    ("no-folders", (), "no class folders"),
    ("no-images", (), "no images in the class folders"),
    ("stray-folder", (), "named neither by an ImageNet wnid nor by a class index"),
    ("ok", ("--batch-size", "6", "--accum", "4"), "not divisible by 1 ranks x --accum 4"),
    ("ok", ("--batch-size", "30"), "more than the 24 images"),
    ("ok", ("--lr", "-1"), "--lr must be a finite number above 0"),
    ("ok", ("--lr", "nan"), "--lr must be a finite number above 0"),
    ("ok", ("--cls-weight", "inf"), "--cls-weight must be a finite number"),
    ("ok", ("--cls-scales", "2-7"), "--cls-scales [4, 5, 6, 7] out of range"),
    ("ok", ("--classes", "5"), "--classes names classes with no folder"),
])
def test_bad_data_and_numbers(tiny_files, image_folder, tmp_path, capsys, layout, extra, message):
    data = {"missing": tmp_path / "nothing", "ok": image_folder}.get(layout, tmp_path / "data")
    folders = {"no-folders": [], "no-images": ["0"], "stray-folder": ["0", "cats"]}.get(layout)
    if folders is not None:
        (data / "train").mkdir(parents=True)
        for name in folders:
            (data / "train" / name).mkdir()
    out = tmp_path / "run"
    refused(command(tiny_files, data, out, *extra), capsys, message)
    assert not out.exists()


def test_a_vae_that_does_not_fit_and_a_missing_vae(tiny_files, image_folder, tmp_path, capsys):
    other = tmp_path / "vae_other.pth"
    torch.save(VQVAE(DIGITS_VAE).state_dict(), other)
    argv = command(tiny_files, image_folder, tmp_path / "run")
    argv[argv.index("--vae") + 1] = str(other)
    refused(argv, capsys, "does not match")
    argv.remove("--vae")
    argv.remove(str(other))
    refused(argv, capsys, "pass its VQVAE with --vae")
    assert not (tmp_path / "run").exists()


def test_an_out_that_holds_something_else(tiny_files, image_folder, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused(command(tiny_files, image_folder, foreign), capsys, "not a hieramp finetune run")
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    refused(command(tiny_files, image_folder, blocker), capsys, "is a file")


def test_an_out_that_holds_a_run_with_other_settings(tiny_files, image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(command(tiny_files, image_folder, out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    argv = command(tiny_files, image_folder, out, "--cls-weight", "0.5")
    refused(argv, capsys, "holds a run with other settings: cls_weight=0.5 (the run there has 1.0)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
