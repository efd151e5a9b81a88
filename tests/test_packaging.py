import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_every_bundled_data_file(tmp_path):
    """A non-editable install must have the default model, the class lists and the held-out digits."""
    tree = tmp_path / "tree"                                  # setuptools builds in the tree: use a copy
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                    str(tree)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("hieramp-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        packaged = {name for name in zf.namelist() if name.startswith("hieramp/data/")}
    data = Path(str(resources.files("hieramp") / "data"))
    bundled = {f"hieramp/data/{p.relative_to(data).as_posix()}" for p in data.rglob("*") if p.is_file()}
    assert bundled and packaged == bundled
