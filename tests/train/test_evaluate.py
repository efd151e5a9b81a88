import json

import numpy as np
import pytest
import torch
from PIL import Image

from hieramp.cli import main
from hieramp.errors import UserError
from hieramp.train.data import to_rgb
from hieramp.train.evaluate import EvalResult, evaluate_distilled, read_image_folder
from hieramp.train.student import random_shift

PER_CLASS = 5


def write_set(root, digits, per_class=PER_CLASS, size=32):
    """Real training digits as a distilled-style set: folders 0-9 of PNGs at `size` px, plus stray files."""
    root.mkdir()
    (root / "mapping.json").write_text("[]")
    for c in range(10):
        (root / str(c)).mkdir()
        members = np.flatnonzero(digits.labels == c)[:per_class]
        for i, image in enumerate(to_rgb(digits.images[members], size)):
            pixels = ((image + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(pixels).save(root / str(c) / f"{i}.png")
    return root


def test_read_image_folder_resizes_and_labels(tmp_path, digits_split):
    root = write_set(tmp_path / "set", digits_split[0])
    images, labels = read_image_folder(root)
    assert images.shape == (10 * PER_CLASS, 3, 16, 16)
    assert labels.tolist() == [c for c in range(10) for _ in range(PER_CLASS)]
    assert -1 <= images.min() and images.max() <= 1
    expected = to_rgb(digits_split[0].images[np.flatnonzero(digits_split[0].labels == 0)[:1]])[0]
    assert (images[0] - expected).abs().mean() < 0.1


def test_evaluate_command_end_to_end(tmp_path, digits_split):
    root = write_set(tmp_path / "set", digits_split[0])
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--distilled", str(root), "--seeds", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["accuracies"]) == 2 and result["seeds"] == 2
    assert result["num_images"] == 10 * PER_CLASS and result["heldout_images"] == 359
    assert result["images_per_class"] == {str(c): PER_CLASS for c in range(10)}
    assert result["accuracy_mean"] == pytest.approx(np.mean(result["accuracies"]))
    assert result["accuracy_std"] == pytest.approx(np.std(result["accuracies"]))
    assert result["accuracy_mean"] > 0.6                  # 5 real digits per class already teach a lot


def test_evaluation_is_reproducible(tmp_path, digits_split):
    root = write_set(tmp_path / "set", digits_split[0], per_class=2)
    assert evaluate_distilled(root, seeds=1).accuracies == evaluate_distilled(root, seeds=1).accuracies


@pytest.mark.parametrize("layout, message", [
    ("missing", "is not a directory"),
    ("empty", "no images"),
    ("bad-folder", "not a digit class folder"),
    ("corrupt", "cannot read image"),
])
def test_bad_sets_are_user_errors(tmp_path, layout, message, capsys):
    root = tmp_path / "set"
    if layout != "missing":
        root.mkdir()
        (root / "3").mkdir()
    if layout == "bad-folder":
        (root / "n01440764").mkdir()
    if layout == "corrupt":
        (root / "3" / "0.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=message):
        evaluate_distilled(root, seeds=1)
    assert main(["evaluate", "--distilled", str(root)]) == 2
    assert message in capsys.readouterr().err


def test_a_json_path_that_cannot_be_written_is_refused_before_training(tmp_path, digits_split, capsys):
    root = write_set(tmp_path / "set", digits_split[0])
    blocker = tmp_path / "file"
    blocker.write_text("")
    for target, message in [(tmp_path, "is a directory: give a file name"),
                            (blocker / "eval.json", "is a file, not a directory")]:
        assert main(["evaluate", "--distilled", str(root), "--json", str(target)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and "accuracy" not in capsys.readouterr().out


def test_eval_result_json_and_text():
    result = EvalResult((0.5, 0.7), 20, {0: 10, 1: 10}, 359)
    assert result.to_json()["accuracy_mean"] == pytest.approx(0.6)
    assert result.to_json()["accuracy_std"] == pytest.approx(0.1)
    assert "60.00 +- 10.00 %" in str(result)


def test_random_shift_moves_content_and_fills_black():
    x = -torch.ones(64, 3, 16, 16)
    x[:, :, 8, 8] = 1
    shifted = random_shift(x, torch.Generator().manual_seed(0), max_shift=2)
    assert shifted.shape == x.shape
    bright = (shifted[:, 0] == 1).nonzero()                          # one bright pixel per image
    assert len(bright) == 64
    assert bright[:, 1:].min() >= 6 and bright[:, 1:].max() <= 10
    assert len({tuple(p) for p in bright[:, 1:].tolist()}) > 10     # shifts differ between images
    assert torch.equal(random_shift(x, torch.Generator(), max_shift=0), x)
