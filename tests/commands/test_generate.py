import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hieramp.cli import main


def hieramp(*args):
    return subprocess.run([sys.executable, "-m", "hieramp.cli", *args], capture_output=True, text=True, timeout=300)


def test_generate_writes_class_folders_and_grid(tmp_path):
    assert main(["generate", "--model", "tiny", "--classes", "1,3-4", "--per-class", "2", "--batch-size", "3",
                 "--seed", "1", "--out", str(tmp_path)]) == 0
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert files == ["1/0.png", "1/1.png", "3/0.png", "3/1.png", "4/0.png", "4/1.png", "grid.png"]
    img = np.asarray(Image.open(tmp_path / "3" / "1.png"))
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8 and img.std() > 0
    assert not list(tmp_path.rglob(".*tmp*"))


def test_generate_is_batch_size_independent(tmp_path):
    for bs in (1, 4):
        assert main(["generate", "--model", "tiny", "--classes", "0-1", "--per-class", "2", "--batch-size", str(bs),
                     "--out", str(tmp_path / str(bs))]) == 0
    for name in ("0/0.png", "0/1.png", "1/0.png", "1/1.png"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "4" / name).read_bytes()


@pytest.mark.parametrize("args,message", [
    (["--model", "missing.pth", "--vae", "vae.pth"], "checkpoint not found: missing.pth"),
    (["--model", "tiny", "--classes", "12"], "class 12 is out of range"),
    (["--model", "tiny", "--rho", "1.5"], r"--rho: rho must lie in \(0, 1\]"),
    (["--model", "tiny", "--rho", "0"], r"--rho: rho must lie in \(0, 1\]"),
    (["--model", "tiny-plain", "--beta", "5"], "needs a model with class tokens"),
    (["--model", "tiny", "--backend", "jax"], "unknown backend 'jax'"),
    (["--model", "nosuchpreset"], "unknown model 'nosuchpreset'"),
])
def test_user_mistakes_exit_2_with_one_line(tmp_path, args, message):
    classes = [] if "--classes" in args else ["--classes", "0"]
    proc = hieramp("generate", "--out", str(tmp_path / "out"), *classes, *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert re.search(message, lines[0]), lines[0]


def test_help_explains_flags():
    proc = hieramp("generate", "--help")
    assert proc.returncode == 0 and "--per-class" in proc.stdout and "--trust-checkpoint" in proc.stdout
