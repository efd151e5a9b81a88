import json
import re

import numpy as np
import pytest
import torch
import torchvision

from hieramp.cli import main
from hieramp.errors import UserError
from hieramp.evaluate.fid import Statistics, folder_statistics, frechet_distance, inception_network, load_statistics

DIMS = "64"            # the first block's features: FID at 2048 needs a 2048 x 2048 matrix square root (~30 s here)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A file with the key names and shapes of pt_inception-2015-12-05-6726825d.pth, random values
    scaled so that activations keep their size through the network."""
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def two_sets(tmp_path, make_set):
    a = make_set(tmp_path / "a", ["0", "1"], 6, seed=1)
    b = make_set(tmp_path / "b", ["0", "1", "2"], 5, seed=2, suffix=".jpg")
    return a, b


def fid(*args):
    return main(["fid", *map(str, args), "--dims", DIMS])


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric(tmp_path, two_sets, weights):
    a, b = two_sets
    out = tmp_path / "out"
    assert fid(a, a, "--inception-weights", weights, "--json", out / "self.json") == 0
    assert abs(json.loads((out / "self.json").read_text())["fid"]) < 1e-6
    assert fid(a, b, "--inception-weights", weights, "--json", out / "ab.json") == 0
    assert fid(b, a, "--inception-weights", weights, "--json", out / "ba.json") == 0
    ab, ba = (json.loads((out / f"{n}.json").read_text()) for n in ("ab", "ba"))
    assert ab["fid"] > 1e-3
    assert ab["fid"] == pytest.approx(ba["fid"], rel=1e-6)
    assert (ab["images_a"], ab["images_b"]) == (12, 15)


def test_saved_statistics_give_the_folder_value(tmp_path, two_sets, weights):
    a, b = two_sets
    stats = tmp_path / "b-stats.npz"
    assert fid(a, b, "--inception-weights", weights, "--save-stats", stats, "--json", tmp_path / "f.json") == 0
    assert fid(a, stats, "--inception-weights", weights, "--json", tmp_path / "s.json") == 0
    folder, saved = (json.loads((tmp_path / n).read_text()) for n in ("f.json", "s.json"))
    assert saved == pytest.approx(folder, rel=1e-9)
    with np.load(stats) as f:
        assert f["mu"].shape == (64,) and f["sigma"].shape == (64, 64) and int(f["images"]) == 15


def test_features_are_pytorch_fid_pool_features(two_sets, weights):
    network = inception_network(weights, 2048)
    stats = folder_statistics(two_sets[0], network)
    assert stats.mu.shape == (2048,) and stats.images == 12 and np.isfinite(stats.mu).all()
    assert stats.mu.std() > 1e-3                               # activations kept their size: a real signal


def test_statistics_of_different_sizes_are_refused():
    with pytest.raises(UserError, match="different sizes"):
        frechet_distance(Statistics(np.zeros(3), np.eye(3), 5), Statistics(np.zeros(4), np.eye(4), 5))


def _snapshot(root):
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.mark.parametrize("case, message", [
    ("missing-weights", r"weights .*none.pth not found: get pt_inception-2015-12-05-6726825d.pth from the pytorch-fid"),
    ("wrong-weights", r"is not the FID Inception network's weights .*pytorch-fid GitHub releases"),
    ("garbage-weights", r"cannot read Inception weights"),
    ("no-weights", r"a folder side needs the FID Inception network: get pt_inception"),
    ("missing-side", r"nowhere is neither a folder of images nor a .npz"),
    ("missing-stats", r"statistics file .*gone.npz not found"),
    ("bad-stats", r"is not a statistics file with 'mu' and 'sigma'"),
    ("stats-of-stats", r"already is a statistics file"),
    ("one-image", r"holds 1 images: FID needs at least 2"),
])
def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, two_sets, weights, capsys, case, message):
    a, b = two_sets
    (tmp_path / "bad.npz").write_bytes(b"nope")
    np.savez(tmp_path / "ok.npz", mu=np.zeros(64), sigma=np.eye(64))
    (tmp_path / "garbage.pth").write_bytes(b"nope")
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet.pth")
    (tmp_path / "single" / "0").mkdir(parents=True)
    next(a.rglob("*.png")).rename(tmp_path / "single" / "0" / "x.png")
    w = ["--inception-weights", str(weights)]
    args = {
        "missing-weights": [a, b, "--inception-weights", tmp_path / "none.pth"],
        "wrong-weights": [a, b, "--inception-weights", tmp_path / "resnet.pth"],
        "garbage-weights": [a, b, "--inception-weights", tmp_path / "garbage.pth"],
        "no-weights": [a, b],
        "missing-side": [a, tmp_path / "nowhere", *w],
        "missing-stats": [a, tmp_path / "gone.npz", *w],
        "bad-stats": [tmp_path / "ok.npz", tmp_path / "bad.npz"],
        "stats-of-stats": [a, tmp_path / "ok.npz", *w, "--save-stats", tmp_path / "s.npz"],
        "one-image": [tmp_path / "single", b, *w],
    }[case]
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert fid(*args, "--json", tmp_path / "out" / "fid.json") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hieramp fid: error: ")
    assert re.search(message, err), err
    after = [p for p in _snapshot(tmp_path) if p.parts[0] != "out"]       # --json's folder is made before the work
    assert after == before and not (tmp_path / "out" / "fid.json").exists()


def test_load_statistics_reads_pytorch_fid_files(tmp_path):
    np.savez(tmp_path / "s.npz", mu=np.ones(3), sigma=np.eye(3))             # pytorch-fid's --save-stats form
    stats = load_statistics(tmp_path / "s.npz")
    assert stats.images is None and stats.mu.tolist() == [1, 1, 1]
