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
from pathlib import Path

from ..errors import UserError
from .plan import Job

READ_BACK = 1 << 16     # longer than any line


def manifest_name(shard) -> str:
    return "manifest.jsonl" if shard.count == 1 else f"manifest.{shard.index}-of-{shard.count}.jsonl"


def finished_jobs(out) -> set:
    """Jobs listed in any manifest in OUT, minus saved images whose file has since been deleted."""
    out = Path(out)
    finished = set()
    for path in sorted(out.glob("manifest*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue                                    # cut short by a kill, or being written now
            if record["status"] != "ok" or (out / record["file"]).is_file():
                finished.add(Job(record["class"], record["index"]))
    return finished


def drop_partial_line(path: Path):
    """Truncate a line that a killed process left unfinished, so appends start on a new line."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(max(0, size - READ_BACK))
        tail = f.read()
        if not tail.endswith(b"\n"):
            f.truncate(size - len(tail) + tail.rfind(b"\n") + 1)


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
        drop_partial_line(self.path)

    def append(self, record: dict):
        os.write(self._fd, (json.dumps(record, sort_keys=True) + "\n").encode())

    def close(self):
        os.fsync(self._fd)
        os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
