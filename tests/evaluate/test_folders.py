import pytest

from hieramp.classes import wnid_of
from hieramp.errors import UserError
from hieramp.evaluate.folders import class_folders, image_files, match_classes


def test_wnid_folders_match_imagenet_index_folders_by_class(tmp_path, make_set):
    distilled = make_set(tmp_path / "d", [wnid_of(i) for i in (207, 1, 980)], 2)
    val = make_set(tmp_path / "v", ["00980", "00001", "00207"], 3)       # another order, index names
    classes = match_classes(class_folders(distilled, "distilled set"), class_folders(val, "validation set"))
    assert classes.names == (wnid_of(1), wnid_of(207), wnid_of(980))     # ImageNet order
    assert [f.name for f in classes.train] == [wnid_of(1), wnid_of(207), wnid_of(980)]
    assert [f.name for f in classes.val] == ["00001", "00207", "00980"]
    assert classes.imagenet_indices == (1, 207, 980)
    paths, labels = image_files(classes.val)
    assert labels == [0] * 3 + [1] * 3 + [2] * 3
    assert all(p.parent.name == classes.val[label].name for p, label in zip(paths, labels))


def test_index_folders_match_by_value_not_name(tmp_path, make_set):
    distilled = make_set(tmp_path / "d", ["00", "01", "10"], 1)
    val = make_set(tmp_path / "v", ["0", "1", "10"], 1)
    classes = match_classes(class_folders(distilled, "distilled set"), class_folders(val, "validation set"))
    assert classes.names == (0, 1, 10)
    assert [f.name for f in classes.train] == ["00", "01", "10"]
    assert [f.name for f in classes.val] == ["0", "1", "10"]


def test_class_on_one_side_only_is_named(tmp_path, make_set):
    distilled = make_set(tmp_path / "d", [wnid_of(0), wnid_of(5)], 1)
    val = make_set(tmp_path / "v", [wnid_of(0)], 1)
    with pytest.raises(UserError, match=f"class {wnid_of(5)} \\(ImageNet class 5\\) is in .*d but not in .*v"):
        match_classes(class_folders(distilled, "distilled set"), class_folders(val, "validation set"))


@pytest.mark.parametrize("names, message", [
    (["cats", "dogs"], "not a class folder"),
    ([wnid_of(0), "1"], "mixes wnid and index"),
    (["1", "01"], "name the same class 1"),
])
def test_bad_class_folders(tmp_path, names, message, make_set):
    make_set(tmp_path / "d", names, 1)
    with pytest.raises(UserError, match=message):
        class_folders(tmp_path / "d", "distilled set")


def test_empty_class_folder_is_an_error(tmp_path, make_set):
    (tmp_path / "d" / "0").mkdir(parents=True)
    with pytest.raises(UserError, match="holds no images"):
        image_files([tmp_path / "d" / "0"])
