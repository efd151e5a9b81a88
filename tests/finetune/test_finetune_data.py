"""The data side of `hieramp finetune`: class folders, sample order over ranks, the transform."""
import numpy as np
import pytest
import torch
from PIL import Image

from hieramp.errors import UserError
from hieramp.finetune.data import Plan, TrainImages, collate, folder_label, scan_images
from hieramp.finetune.schedule import lr_factor
from hieramp.train.stepper import param_groups
from hieramp.model.presets import random_model


def test_class_folders_map_to_the_model_label_space(tmp_path, make_image_folder):
    root = make_image_folder(tmp_path / "imagenet", per_class=2, names=("n01440764", "n01443537", "n01484850"))
    assert scan_images(root, 1000).labels == (0, 0, 1, 1, 2, 2)
    subset = scan_images(root, 1000, classes=[1, 2])
    assert subset.labels == (1, 1, 2, 2) and subset.root == root
    assert folder_label(tmp_path / "00007", 10) == 7 and folder_label(tmp_path / "9", 10) == 9
    for name, message in [("10", "neither by an ImageNet wnid nor"), ("cats", "neither by an ImageNet wnid nor"),
                          ("n01440764", "named by wnid, but the model has 10 classes"), ]:
        with pytest.raises(UserError, match=message):
            folder_label(tmp_path / name, 10)
    with pytest.raises(UserError, match="no folder"):
        scan_images(root, 1000, classes=[5])


def test_one_rank_and_two_ranks_see_the_same_global_batches():
    one, two = Plan(20, 8, 2, 1, seed=3), Plan(20, 8, 2, 2, seed=3)
    assert one.steps_per_epoch == 2 and two.local_batch == 2
    for step in range(5):                                                   # crosses epochs
        whole = [k for micro in one.keys(step, 0) for k in micro]
        split = [k for m0, m1 in zip(two.keys(step, 0), two.keys(step, 1)) for k in m0 + m1]
        assert whole == split and len(set(whole)) == 8
        assert {e for _, e in whole} == {step // 2}
    assert [k for m in one.keys(0, 0) for k in m] != [k for m in Plan(20, 8, 2, 1, seed=4).keys(0, 0) for k in m]


def test_transform_crops_in_range_deterministically_and_skips_unreadable_files(tmp_path, make_image_folder):
    root = make_image_folder(tmp_path / "data", per_class=2)
    (root / "0" / "broken.png").write_bytes(b"not a png")
    images = scan_images(root, 10)
    dataset = TrainImages(images, size=8, seed=0, hflip=True)
    x, label = dataset[(0, 0)]
    assert x.shape == (3, 8, 8) and label == 0 and -1 <= x.min() and x.max() <= 1
    assert torch.equal(dataset[(0, 0)][0], x)
    assert x[0].mean() > 0.5 and x[2].mean() < -0.5                            # class 0 is red
    broken = images.paths.index(root / "0" / "broken.png")
    assert dataset[(broken, 0)] is None
    batch, labels, kept, bad = collate([dataset[(0, 0)], dataset[(broken, 0)], dataset[(3, 0)]])
    assert batch.shape == (2, 3, 8, 8) and labels.tolist() == [0, 1] and kept.tolist() == [True, False, True] and bad == 1
    wide = Image.open(images.paths[1])
    assert wide.size != (10, 10)                                               # non-square images crop too


def test_lr_shape_is_warmup_hold_and_linear_decay():
    total = 1000
    assert lr_factor(0, total) == pytest.approx(0.005)
    assert lr_factor(10, total) == pytest.approx(0.005 + 0.995 * 0.5)
    assert lr_factor(20, total) == lr_factor(60, total) == 1.0
    assert lr_factor(total - 1, total) == pytest.approx(0.1)
    factors = [lr_factor(s, total) for s in range(70, total)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    assert lr_factor(0, 3) == 1.0                                              # too short to warm up


def test_weight_decay_spares_vectors_biases_tokens_and_embeddings():
    var = random_model("tiny").var
    decayed, spared = param_groups(var.named_parameters(), 0.05)
    names = {id(p): n for n, p in var.named_parameters()}
    spared_names = {names[id(p)] for p in spared["params"]}
    assert decayed["weight_decay"] == 0.05 and spared["weight_decay"] == 0.0
    assert {"cls_tokens.0", "pos_start", "pos_1LC", "lvl_embed.weight", "blocks.0.attn.scale_mul_1H11",
            "blocks.0.attn.q_bias", "head.bias"} <= spared_names
    assert {"blocks.0.attn.mat_qkv.weight", "word_embed.weight", "class_emb.weight", "head.weight"} \
        <= {names[id(p)] for p in decayed["params"]}
