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
