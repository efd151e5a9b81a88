"""The output directory of a distill run.

    OUT/run.json            the settings, pinned by the first run; later runs must match them
    OUT/mapping.json        one {index, wnid, name, folder, imagefolder_label} record per class
    OUT/<folder>/<i>.png    ImageFolder layout: a folder per class (its wnid for ImageNet-1k)
    OUT/manifest*.jsonl     one line per finished image (see manifest.py)
"""
import json
import os
import time
from pathlib import Path

from ..classes import class_mapping, folder_name
from ..errors import UserError
from ..files import write_atomic

RUN_FILE = "run.json"
MAPPING_FILE = "mapping.json"
# write_atomic writes `.<name>.tmp-<pid>` and renames it; a killed process leaves that name behind.
TEMP_MARK = ".tmp-"
STALE_ROOT_TEMP_S = 60

# What to change when a setting in run.json differs from the command's.
SETTING_FLAGS = {
    "model": "--model/--vae", "backend": "--backend", "artifact": "--export/--engine", "seed": "--seed",
    "sampling": "the sampling flags", "amp": "the amplification flags", "save_size": "--save-size",
    "png_level": "--png-level", "precision": "--precision (or the export's dtype)",
    "classes": "--classes", "ipc": "--ipc",
}


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()   # settings are checked finite


def _short(value, limit=60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Layout:
    def __init__(self, out, num_classes: int):
        self.out = Path(out)
        self.num_classes = num_classes
        self._folders = {}

    def folder(self, label: int) -> str:
        if label not in self._folders:
            self._folders[label] = folder_name(label, self.num_classes)
        return self._folders[label]

    def relative(self, job) -> str:
        """The image's path inside OUT, as the manifest records it."""
        return f"{self.folder(job.label)}/{job.index}.png"

    def image_path(self, job) -> Path:
        return self.out / self.relative(job)

    def claim(self, settings: dict):
        """Pin `settings` in run.json on first use of OUT; refuse a run whose settings differ.

        The file is created with a hard link from a complete temporary file, so of two processes
        starting at once exactly one creates it and the other compares against it.
        """
        settings = json.loads(json.dumps(settings))             # tuples -> lists, as read back
        path = self.out / RUN_FILE
        if not path.exists():
            self._check_empty()
            tmp = self.out / f".{RUN_FILE}{TEMP_MARK}{os.getpid()}"
            write_atomic(tmp, _json_bytes(settings))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        try:
            pinned = json.loads(path.read_text())
        except (ValueError, OSError):
            pinned = None
        if not isinstance(pinned, dict):
            raise UserError(f"{path} was not written by `hieramp distill`: choose a new output directory")
        if pinned != settings:
            diffs = [f"{key} is {_short(pinned.get(key))} there but {_short(settings.get(key))} now "
                     f"({SETTING_FLAGS.get(key, key)})"
                     for key in sorted(set(pinned) | set(settings)) if pinned.get(key) != settings.get(key)]
            raise UserError(f"{self.out} holds a distill run with other settings: {'; '.join(diffs)}. "
                            f"Rerun with the original settings to resume, or choose a new output directory")

    def _check_empty(self):
        # A shard starting at the same moment may be writing run.json (always the first file).
        others = [p.name for p in self.out.iterdir() if TEMP_MARK not in p.name]
        if others and not (self.out / RUN_FILE).exists():
            raise UserError(f"{self.out} is not empty and holds no {RUN_FILE} of a distill run "
                            f"(found {', '.join(sorted(others)[:3])}): choose a new or empty output directory")

    def write_mapping(self, classes):
        """mapping.json, with the label a torchvision ImageFolder gives each class (sorted folder names)."""
        path = self.out / MAPPING_FILE
        if path.exists():
            return
        records = class_mapping(list(classes), self.num_classes)
        order = sorted(self.folder(c) for c in classes)
        for record in records:
            record["folder"] = self.folder(record["index"])
            record["imagefolder_label"] = order.index(record["folder"])
        write_atomic(path, _json_bytes(records))

    def make_folders(self, classes):
        for c in classes:
            (self.out / self.folder(c)).mkdir(exist_ok=True)

    def remove_stale_temps(self, jobs):
        """Delete temporary files that a killed run left behind.

        Image temporaries are removed only for `jobs`: this shard alone writes them, so none is in
        use. The run.json and mapping.json temporaries live for microseconds; one older than a
        minute belongs to a dead process.
        """
        owned = {}
        for job in jobs:
            owned.setdefault(self.folder(job.label), set()).add(f".{job.index}.png{TEMP_MARK}")
        for folder, prefixes in owned.items():
            directory = self.out / folder
            if not directory.is_dir():
                continue
            for entry in os.scandir(directory):
                mark = entry.name.find(TEMP_MARK)
                if mark > 0 and entry.name[:mark + len(TEMP_MARK)] in prefixes:
                    Path(entry.path).unlink(missing_ok=True)
        for entry in os.scandir(self.out):
            if TEMP_MARK in entry.name and _age_s(entry) > STALE_ROOT_TEMP_S:
                Path(entry.path).unlink(missing_ok=True)     # another shard may remove it too


def _age_s(entry) -> float:
    try:
        return time.time() - entry.stat().st_mtime
    except FileNotFoundError:                                   # removed by another shard meanwhile
        return 0.0
