"""A fine-tune's output directory: run.json (settings, versions), ar-ckpt-last.pth (weights in the
HierAmp trainer file form plus everything needed to continue to the step), log.jsonl and loss.png.
A rerun of the same command continues from the checkpoint; a rerun with other settings is refused."""
import importlib.metadata
import io
import json
import platform
import sys
from pathlib import Path
from typing import Optional

import torch

from ..errors import UserError
from ..files import write_atomic
from .settings import FinetuneSettings

RUN_FILE = "run.json"
CHECKPOINT = "ar-ckpt-last.pth"
LOG_FILE = "log.jsonl"
PLOT_FILE = "loss.png"
FORMAT = "hieramp-finetune"


def read_run(out: Path) -> Optional[dict]:
    try:
        data = json.loads((out / RUN_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read {out / RUN_FILE} ({err}): choose a new --out") from None
    return data if isinstance(data, dict) else {}


def check_out(out: Path, settings: FinetuneSettings) -> bool:
    """Whether `out` holds this run already (to continue); refuses a place that holds anything else."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: choose a directory")
    if not out.exists() or not any(out.iterdir()):
        return False
    run = read_run(out)
    if run is None or run.get("format") != FORMAT:
        raise UserError(f"--out {out} holds files that are not a hieramp finetune run: choose a new --out")
    theirs = FinetuneSettings.from_json(run.get("settings", {}))
    diff = settings.differences(theirs)
    if diff:
        raise UserError(f"--out {out} holds a run with other settings: {'; '.join(diff)}; "
                        f"rerun with its settings to continue it, or choose a new --out")
    return True


def start_run(out: Path, settings: FinetuneSettings, info: dict):
    """Create `out` with run.json (rank 0, after every check passed)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create --out {out}: {err.strerror}; choose a writable path") from None
    if (out / RUN_FILE).exists():
        return
    run = {"format": FORMAT, "settings": settings.to_json(), **info,
           "versions": {**{name: importlib.metadata.version(name) for name in ("hieramp", "torch", "torchvision")},
                        "python": platform.python_version()},
           "command": sys.argv}
    write_atomic(out / RUN_FILE, (json.dumps(run, indent=1) + "\n").encode())


def save_checkpoint(out: Path, state: dict):
    buf = io.BytesIO()
    torch.save(state, buf)
    write_atomic(out / CHECKPOINT, buf.getvalue())


def load_checkpoint(out: Path) -> Optional[dict]:
    path = out / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:          # any unreadable file: the message says what to do
        raise UserError(f"cannot read {path} ({str(err).splitlines()[0]}): remove it to start the run over") from None


def append_log(out: Path, record: dict):
    with open(out / LOG_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_log(out: Path) -> list:
    path = out / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trim_log(out: Path, last_step: int):
    """Drop the lines logged after the checkpoint a run continues from (those steps run again)."""
    kept = [r for r in read_log(out) if r["step"] <= last_step]
    write_atomic(out / LOG_FILE, "".join(json.dumps(r) + "\n" for r in kept).encode())
