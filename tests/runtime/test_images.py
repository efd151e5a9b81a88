import pytest

from hieramp.runtime.images import write_atomic


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
