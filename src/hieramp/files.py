"""Files written whole or not at all, and their digests.

`write_atomic` writes a file under a temporary name and renames it into place; `staged_directory`
does the same for a directory; `sha256_of` is the digest every manifest records.
"""
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from .errors import UserError


def write_atomic(path, data: bytes):
    """The file appears complete or not at all, even if the process is killed mid-write."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_creatable(path):
    """Refuse a path that cannot be created: the nearest existing folder above it is a file or
    is not writable. Creates nothing."""
    path = Path(path)
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise UserError(f"cannot create {path}: {existing} is a file, not a directory; choose another place")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot create {path}: {existing} is not writable; choose another place")


def check_place(out, what: str, is_earlier: Callable[[Path], bool]):
    """Refuse, before any work, an output directory that `staged_directory` could not fill: it
    exists and is something else, or it cannot be created there."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_earlier(out))):
        raise UserError(f"{out} exists and is not {what}: choose a new output directory or remove it")
    check_creatable(out)


def _give_default_modes(directory: Path):
    """The modes the user's umask gives new files: mkdtemp makes the staging directory 0700 and
    onnx writes external data 0600, so others could not read a published export."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


@contextmanager
def staged_directory(out, what: str, is_earlier: Callable[[Path], bool]):
    """Yields an empty staging directory; on success it replaces `out` (an earlier `what` there,
    recognised by `is_earlier(out)`, goes only after the new one is in place)."""
    out = Path(out)
    check_place(out, what, is_earlier)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
        _give_default_modes(staging)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
