import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hieramp.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = ["--model", "tiny", "--classes", "0-9", "--ipc", "20", "--save-size", "16", "--seed", "11", "--no-progress"]
# The tiny model gains nothing from intra-op threads, and oversubscribed OpenMP threads slow a
# busy 2-core machine down many times over.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def command(out, *extra):
    return [sys.executable, "-m", "hieramp.cli", "distill", *SPEC, "--out", str(out), *extra]


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest_count(out):
    path = out / "manifest.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    done = subprocess.run(command(out, "--batch-size", "8"), env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "200 written now" in done.stdout and "200/200 images finished (complete)" in done.stdout
    return out


@pytest.mark.slow
def test_sigkill_then_resume_with_another_batch_size_equals_an_uninterrupted_run(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(command(out, "--batch-size", "1"), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while manifest_count(out) < 30 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    finished = manifest_count(out)
    assert 30 <= finished < 200
    resumed = subprocess.run(command(out, "--batch-size", "7"), env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    skipped = int(resumed.stdout.split(" already done")[0].rsplit(" ", 1)[1])
    assert finished <= skipped <= finished + 1              # a line cut by the kill is redone
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert tree(out) == tree(uninterrupted)                 # PNGs, manifest, run.json, mapping.json


@pytest.mark.slow
def test_two_shard_processes_equal_one_process(uninterrupted, tmp_path):
    first = subprocess.Popen(command(tmp_path, "--shard", "0/2", "--batch-size", "3"), env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command(tmp_path, "--batch-size", "16"), env={**ENV, "RANK": "1", "WORLD_SIZE": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for proc in (first, second):
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
        assert "100 images, 100 written now" in stdout
    assert sorted(p.name for p in tmp_path.glob("manifest*")) == ["manifest.0-of-2.jsonl", "manifest.1-of-2.jsonl"]
    files, reference = tree(tmp_path), tree(uninterrupted)
    lines = lambda t: sorted(line for name, data in t.items() if name.startswith("manifest")
                             for line in data.decode().splitlines())
    assert lines(files) == lines(reference)
    strip = lambda t: {k: v for k, v in t.items() if not k.startswith("manifest")}
    assert strip(files) == strip(reference)


def distill(*argv):
    return main(["distill", "--model", "tiny", "--save-size", "16", "--no-progress", *argv])


@pytest.mark.parametrize("spec, folders", [("7,0-2", ["0", "1", "2", "7"]), ("file", ["3", "5", "9"])])
def test_class_specs(tmp_path, capsys, spec, folders):
    if spec == "file":
        spec = tmp_path / "classes.txt"
        spec.write_text("9\n# comment\n3, 5\n")
    out = tmp_path / "out"
    assert distill("--classes", str(spec), "--ipc", "1", "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == folders
    assert f"{len(folders)}/{len(folders)} images finished (complete)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--classes", "3,12", "--ipc", "1"], "class 12 is out of range: this model has 10 classes"),
    (["--classes", "imagenette", "--ipc", "1"], "subset imagenette only exists for 1000-class ImageNet models"),
    (["--classes", "n01440764", "--ipc", "1"], "only exists for 1000-class ImageNet models"),
    (["--classes", "dogs", "--ipc", "1"], "unknown class spec 'dogs'"),
    (["--classes", "0", "--ipc", "1", "--shard", "2/2"], "shard 2/2 does not exist"),
    (["--classes", "0", "--ipc", "1", "--backend", "tensorrt"], "pass --engine DIR"),
    (["--classes", "0", "--ipc", "1", "--backend", "openvino"], "unknown backend 'openvino'"),
    (["--classes", "0", "--ipc", "1", "--model", "tiny-plain", "--beta", "5"], "needs a model with class tokens"),
    (["--classes", "0", "--ipc", "1", "--model", "missing.pth", "--vae", "missing.pth"], "missing.pth"),
], ids=["class-range", "subset", "wnid", "spec", "shard", "engine", "backend", "amp", "checkpoint"])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert distill(*argv, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_png_level_outside_0_to_9_exits_2(tmp_path, capsys):
    assert distill("--classes", "0", "--ipc", "1", "--png-level", "10", "--out", str(tmp_path / "out")) == 2
    assert "--png-level: invalid choice: 10" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("ipc", ["0", "-3"])
def test_ipc_must_be_positive(tmp_path, capsys, ipc):
    assert distill("--classes", "0", "--ipc", ipc, "--out", str(tmp_path / "out")) == 2
    assert "--ipc: images per class must be an integer from 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert distill("--classes", "0", "--ipc", "1", "--out", str(blocker / "out")) == 2
    assert "cannot create output directory" in capsys.readouterr().err


def test_rerun_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert distill("--classes", "0-1", "--ipc", "1", "--out", str(out)) == 0
    before = tree(out)
    assert distill("--classes", "0-1", "--ipc", "1", "--out", str(out), "--seed", "1", "--cfg", "2") == 2
    err = capsys.readouterr().err
    assert "holds a distill run with other settings" in err and "seed is 0 there but 1 now (--seed)" in err
    assert "sampling is" in err and "(the sampling flags)" in err
    assert tree(out) == before
    assert json.loads((out / "run.json").read_text())["seed"] == 0


def test_torchrun_processes_take_the_gpu_of_their_local_rank():
    from hieramp.commands.distill import device_for_rank
    assert device_for_rank("cuda", {"LOCAL_RANK": "3"}) == "cuda:3"
    assert device_for_rank("cuda:1", {"LOCAL_RANK": "3"}) == "cuda:1"
    assert device_for_rank("cpu", {"LOCAL_RANK": "3"}) == "cpu"
    assert device_for_rank("cuda", {}) == "cuda"


def test_resume_redoes_the_image_of_a_cut_last_line_and_refuses_other_damage(tmp_path, capsys):
    out = tmp_path / "out"
    assert distill("--classes", "0-1", "--ipc", "2", "--out", str(out)) == 0
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    capsys.readouterr()
    manifest.write_text("".join(lines[:-1]) + lines[-1][:25])          # a kill in the middle of the last write
    assert distill("--classes", "0-1", "--ipc", "2", "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "dropped its last line" in captured.err
    assert "1 written now, 3 already done" in captured.out
    assert manifest.read_text().splitlines()[:-1] == [line.rstrip("\n") for line in lines[:-1]]
    manifest.write_text(lines[0] + "{garbage\n" + "".join(lines[2:]))
    before = manifest.read_bytes()
    assert distill("--classes", "0-1", "--ipc", "2", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "manifest.jsonl line 2 is damaged" in err
    assert manifest.read_bytes() == before


def test_precision_is_pinned_and_a_rerun_in_another_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert distill("--classes", "0", "--ipc", "1", "--out", str(out), "--precision", "bf16") == 0
    assert json.loads((out / "run.json").read_text())["precision"] == "bf16"
    assert json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["precision"] == "bf16"
    before = tree(out)
    assert distill("--classes", "0", "--ipc", "1", "--out", str(out)) == 2
    assert "precision is \"bf16\" there but null now (--precision" in capsys.readouterr().err
    assert tree(out) == before
