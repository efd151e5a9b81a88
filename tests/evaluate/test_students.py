import pytest
import torch

from hieramp.classes import wnid_of
from hieramp.errors import UserError
from hieramp.evaluate.folders import class_folders, match_classes
from hieramp.evaluate.students import STUDENTS, ConvNet, build_student, convnet_depth, resnet18
from hieramp.evaluate.teacher import load_teacher


@pytest.mark.parametrize("name", list(STUDENTS))
def test_students_classify_small_images(name):
    torch.manual_seed(0)
    model = build_student(name, 7, 32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("size, kernel, pool", [(32, 3, None), (96, 3, 2), (160, 7, 4)])
def test_resnet_ap10_stem_follows_the_image_size(size, kernel, pool):
    model = build_student("resnet-ap10", 3, size)
    assert model(torch.randn(1, 3, size, size)).shape == (1, 3)
    stem = model.features[:4]
    assert stem[0].kernel_size == (kernel, kernel) and stem[0].stride == (1, 1)
    assert (stem[3].kernel_size if isinstance(stem[3], torch.nn.AvgPool2d) else None) == pool
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.BatchNorm2d)) for m in model.modules())


def test_convnet_depth_follows_the_image_size():
    assert [convnet_depth(s) for s in (32, 64, 128, 224, 256)] == [3, 4, 5, 5, 6]
    net = ConvNet(10, 64)
    assert net.classifier.in_features == 128 * 4 * 4
    assert sum(isinstance(m, torch.nn.GroupNorm) and m.num_groups == 128 for m in net.modules()) == 4


def test_unknown_student():
    with pytest.raises(UserError, match="unknown student 'vgg'"):
        build_student("vgg", 10, 32)


def _classes(tmp_path, make_set, names):
    make_set(tmp_path / "d", names, 1)
    make_set(tmp_path / "v", names, 1)
    return match_classes(class_folders(tmp_path / "d", "d"), class_folders(tmp_path / "v", "v"))


def test_imagenet_teacher_is_restricted_to_the_classes(tmp_path, make_set):
    classes = _classes(tmp_path, make_set, [wnid_of(i) for i in (3, 400, 999)])
    torch.manual_seed(0)
    network = resnet18(1000).eval()
    torch.save({"model": {f"module.{k}": v for k, v in network.state_dict().items()}}, tmp_path / "t.pth")
    teacher = load_teacher(tmp_path / "t.pth", classes)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(teacher(x), network(x)[:, [3, 400, 999]])


def test_teacher_of_the_evaluated_classes_is_used_whole(tmp_path, make_set):
    classes = _classes(tmp_path, make_set, ["0", "1", "2"])
    torch.save(resnet18(3).state_dict(), tmp_path / "t.pth")
    assert load_teacher(tmp_path / "t.pth", classes).keep is None


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"not a torch file", "cannot read teacher"),
    ({"conv1.weight": torch.zeros(1)}, "not a torchvision ResNet-18"),
    ("wrong-shape", "does not fit torchvision's ResNet-18"),
    ("five-outputs", "has 5 outputs, but 3 classes"),
])
def test_bad_teacher_files(tmp_path, make_set, content, message):
    classes = _classes(tmp_path, make_set, ["0", "1", "2"])
    path = tmp_path / "t.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "wrong-shape":
        state = resnet18(3).state_dict()
        state["layer1.0.conv1.weight"] = torch.zeros(1, 1, 3, 3)
        torch.save(state, path)
    elif content == "five-outputs":
        torch.save(resnet18(5).state_dict(), path)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(UserError, match=message):
        load_teacher(path, classes)
