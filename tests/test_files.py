import os
import stat

import pytest

from hieramp.errors import UserError
from hieramp.files import staged_directory, write_atomic

MARKED = lambda d: (d / "manifest.json").is_file()          # noqa: E731


def test_a_finished_directory_replaces_the_earlier_one(tmp_path):
    out = tmp_path / "out"
    for text in ("first", "second"):
        with staged_directory(out, "an export directory", MARKED) as staging:
            assert staging.parent == tmp_path and not any(staging.iterdir())
            (staging / "manifest.json").write_text(text)
        assert (out / "manifest.json").read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failure_keeps_the_earlier_directory_and_leaves_no_staging(tmp_path):
    out = tmp_path / "out"
    with staged_directory(out, "an export directory", MARKED) as staging:
        (staging / "manifest.json").write_text("good")
    with pytest.raises(RuntimeError):
        with staged_directory(out, "an export directory", MARKED) as staging:
            (staging / "manifest.json").write_text("half")
            raise RuntimeError("interrupted")
    assert (out / "manifest.json").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_directory_of_something_else_is_refused(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"")
    with pytest.raises(UserError, match="photos exists and is not an engine directory: choose a new output directory"):
        with staged_directory(tmp_path / "photos", "an engine directory", MARKED):
            pass
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["cat.png"]


def test_write_atomic_replaces_a_file_whole(tmp_path):
    path = tmp_path / "a.bin"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_write_atomic_onto_a_directory_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "folder"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomic(target, b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["folder"] and list(target.iterdir()) == []


def test_a_published_directory_has_the_modes_of_new_files(tmp_path):
    """Not mkdtemp's 0700, nor the 0600 that onnx gives external data: what the umask gives."""
    umask = os.umask(0o022)
    try:
        with staged_directory(tmp_path / "out", "an export directory", MARKED) as staging:
            (staging / "graph.onnx.data").write_bytes(b"w")
            (staging / "graph.onnx.data").chmod(0o600)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "graph.onnx.data").stat().st_mode) == 0o644
