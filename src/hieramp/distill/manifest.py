"""manifest*.jsonl: one JSON line per finished image, the record that lets a rerun resume.

A line is appended only after its file is in place, so a listed image is complete. Each shard
appends to its own file (manifest.jsonl for an unsharded run, manifest.<i>-of-<n>.jsonl
otherwise): no two processes ever write the same file, and no lock is needed, even across
machines. A rerun reads every manifest, so it may use another shard count than the first run.

Line fields: class, index, status ("ok", or "blank" / "nonfinite" for an image not saved),
file (path inside OUT, null if not saved), sha256 (of the file), and the image settings: model,
backend, artifact, seed, sampling, amp, save_size, png_level, and precision unless fp32.
"""
import fcntl
import json
import os
import sys
from pathlib import Path

from ..errors import UserError
from .plan import Job

READ_BACK = 1 << 16     # longer than any line
STATUSES = ("ok", "blank", "nonfinite")


def manifest_name(shard) -> str:
    return "manifest.jsonl" if shard.count == 1 else f"manifest.{shard.index}-of-{shard.count}.jsonl"


def parse_record(line: bytes):
    """The record of one manifest line, or None if the line is damaged."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    valid = isinstance(record, dict) and all(type(record.get(key)) is int for key in ("class", "index")) \
        and record.get("status") in STATUSES and (record["status"] != "ok" or isinstance(record.get("file"), str))
    return record if valid else None


def read_records(path: Path) -> list:
    """The records of one manifest. Its last line may be unfinished or damaged, by a process killed
    while writing it (its own run repairs it on resume, see `drop_partial_line`) or one writing it
    now, and is skipped; a damaged line anywhere else is refused, naming it."""
    lines = path.read_bytes().split(b"\n")          # the last item is what follows the last newline
    last = len(lines) - 1 if lines[-1] else len(lines) - 2
    records = []
    for number, line in enumerate(lines[:last + 1], start=1):
        record = parse_record(line)
        if record is not None:
            records.append(record)
        elif number - 1 != last:
            raise UserError(f"{path} line {number} is damaged ({line[:40]!r}): only a last line can be cut short by "
                            f"a kill; remove the line to make its image again, or distill into a new directory")
    return records


def finished_jobs(out) -> set:
    """Jobs listed in any manifest in OUT, minus saved images whose file has since been deleted."""
    out = Path(out)
    finished = set()
    for path in sorted(out.glob("manifest*.jsonl")):
        for record in read_records(path):
            if record["status"] != "ok" or (out / record["file"]).is_file():
                finished.add(Job(record["class"], record["index"]))
    return finished


def drop_partial_line(path: Path) -> bool:
    """Truncate a last line that a killed process left unfinished or damaged, so that its image is
    made again and appends start on a new line; whether there was one."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - READ_BACK))
        tail = f.read()
        if tail.endswith(b"\n"):
            start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
            if start == 0 and size > len(tail) or parse_record(tail[start:]) is not None:
                return False
        else:
            start = tail.rfind(b"\n") + 1
        if start == len(tail):
            return False
        f.truncate(size - len(tail) + start)
    return True


class ShardManifest:
    """This shard's manifest, opened for appending (one write per line) and locked: a second
    process started on the same shard is refused instead of racing the first."""

    def __init__(self, path):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise UserError(f"another process is writing {self.path}: it runs the same shard; let it finish, "
                            f"or stop it and rerun to resume") from None
        if drop_partial_line(self.path):
            print(f"{self.path}: dropped its last line, cut short when an earlier run was stopped; "
                  f"that image is made again", file=sys.stderr)

    def append(self, record: dict):
        os.write(self._fd, (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode())

    def close(self):
        os.fsync(self._fd)
        os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
