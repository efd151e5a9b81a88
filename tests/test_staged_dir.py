import pytest

from hieramp.errors import UserError
from hieramp.staged_dir import staged_directory

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
