import pytest

from hieramp.classes import (
    class_mapping,
    folder_name,
    imagenet_classes,
    name_of,
    parse_class_spec,
    wnid_of,
)
from hieramp.errors import UserError

IMAGENETTE = [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
IMAGEWOOF = [155, 159, 162, 167, 182, 193, 207, 229, 258, 273]


def test_table_is_the_sorted_imagenet_1k_wnids():
    table = imagenet_classes()
    assert [row[0] for row in table] == list(range(1000))
    wnids = [row[1] for row in table]
    assert len(set(wnids)) == 1000
    assert wnids == sorted(wnids)


@pytest.mark.parametrize(
    "index, wnid, name",
    [
        (0, "n01440764", "tench"),
        (207, "n02099601", "golden retriever"),
        (217, "n02102040", "English springer"),
        (482, "n02979186", "cassette player"),
        (701, "n03888257", "parachute"),
        (999, "n15075141", "toilet tissue"),
    ],
)
def test_table_anchors(index, wnid, name):
    assert (wnid_of(index), name_of(index)) == (wnid, name)


def test_ranges_and_lists_keep_first_occurrence_order():
    assert parse_class_spec("0-99,207") == list(range(100)) + [207]
    assert parse_class_spec("1,2,5-9") == [1, 2, 5, 6, 7, 8, 9]
    assert parse_class_spec(" 9, 3-5 ,4,9 ") == [9, 3, 4, 5]
    assert parse_class_spec("7-7") == [7]
    assert parse_class_spec("0-9", num_classes=10) == list(range(10))


def test_inline_wnids():
    assert parse_class_spec("n02099601,n01440764") == [207, 0]


def test_file_of_indices(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# picked by hand\n3\n\n1, 2  # trailing comment\n10-12\n3\n")
    assert parse_class_spec(str(path)) == [3, 1, 2, 10, 11, 12]


def test_file_of_wnids(tmp_path):
    path = tmp_path / "wnids.txt"
    path.write_text("n15075141\nn01440764,n02099601\n")
    assert parse_class_spec(str(path)) == [999, 0, 207]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("imagenette", IMAGENETTE),
        ("ImageNette", IMAGENETTE),
        ("imagewoof", IMAGEWOOF),
        ("IMAGEWOOF", IMAGEWOOF),
    ],
)
def test_ten_class_subsets(spec, expected):
    assert parse_class_spec(spec) == expected


def test_imagenet_100_is_the_cmc_subset_in_imagefolder_order():
    indices = parse_class_spec("imagenet-100")
    assert len(indices) == len(set(indices)) == 100
    assert indices == sorted(indices)
    assert indices[:3] == [15, 45, 54] and indices[-1] == 994
    assert {wnid_of(i) for i in indices} >= {"n02869837", "n01749939", "n02488291", "n02090622"}
    assert parse_class_spec("ImageNet-100") == indices


def test_folder_name_and_mapping():
    assert folder_name(207, 1000) == "n02099601"
    assert folder_name(7, 10) == "7"
    assert [folder_name(i, 100) for i in (2, 10, 99)] == ["02", "10", "99"]
    names = [folder_name(i, 500) for i in range(500)]
    assert sorted(names) == names and names[7] == "007"          # ImageFolder's order is the class order
    assert class_mapping([0, 207], 1000) == [
        {"index": 0, "wnid": "n01440764", "name": "tench"},
        {"index": 207, "wnid": "n02099601", "name": "golden retriever"},
    ]
    assert class_mapping([3], 10) == [{"index": 3, "wnid": None, "name": None}]


@pytest.mark.parametrize(
    "spec, num_classes, message",
    [
        ("1000", 1000, r"^class 1000 is out of range: this model has 1000 classes \(0-999\)$"),
        ("990-1005", 1000, r"^class 1005 is out of range"),
        ("10", 10, r"^class 10 is out of range: this model has 10 classes \(0-9\)$"),
        (
            "foo",
            1000,
            r"^unknown class spec 'foo': use ranges like 0-9,15, a file of indices or wnids, "
            r"or one of imagenette, imagewoof, imagenet-100$",
        ),
        ("1,2,x", 1000, r"^unknown class spec '1,2,x'"),
        ("", 1000, r"^empty class spec: use ranges"),
        ("  ", 1000, r"^empty class spec"),
        ("5-2", 1000, r"^bad range 5-2: the start is above the end, write it as 2-5$"),
        ("n00000001", 1000, r"^unknown wnid n00000001: it is not one of the 1000 ImageNet-1k classes$"),
        (
            "n01440764",
            10,
            r"^wnid n01440764 only exists for 1000-class ImageNet models: this model has 10 "
            r"classes, so use indices 0-9$",
        ),
        ("imagenette", 100, r"^subset imagenette only exists for 1000-class ImageNet models"),
        ("imagenet-100", 10, r"^subset imagenet-100 only exists for 1000-class ImageNet models"),
        ("missing/classes.txt", 1000, r"^class file 'missing/classes.txt' not found"),
        ("classes.txt", 1000, r"^class file 'classes.txt' not found"),
    ],
)
def test_bad_specs(spec, num_classes, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=message):
        parse_class_spec(spec, num_classes)


def test_bad_class_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    with pytest.raises(UserError, match=r"^class file '.*empty.txt' lists no classes"):
        parse_class_spec(str(empty))
    wnids = tmp_path / "wnids.txt"
    wnids.write_text("n01440764\n")
    with pytest.raises(UserError, match=r"^wnid n01440764 only exists for 1000-class ImageNet models"):
        parse_class_spec(str(wnids), num_classes=10)
    bad = tmp_path / "bad.txt"
    bad.write_text("1\ngolden retriever\n")
    with pytest.raises(UserError, match=r"^bad class 'golden': expected an index"):
        parse_class_spec(str(bad))


def test_lookups_check_their_index():
    with pytest.raises(UserError, match=r"^class 1000 is out of range"):
        wnid_of(1000)
    with pytest.raises(UserError, match=r"^class -1 is out of range"):
        name_of(-1)
    with pytest.raises(UserError, match=r"^class 10 is out of range: this model has 10 classes"):
        folder_name(10, 10)
    with pytest.raises(UserError, match=r"^class 12 is out of range"):
        class_mapping([1, 12], 10)
