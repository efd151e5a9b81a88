import math

import pytest
import torch

from hieramp.evaluate import augment
from hieramp.evaluate.protocols import PROTOCOLS, mixed_label_loss, soft_label_loss

SOFT, HARD = PROTOCOLS["soft"], PROTOCOLS["hard"]


def test_soft_label_loss_is_the_hand_computed_kl():
    student = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    teacher = torch.tensor([[1.0, 0.0, -1.0], [4.0, -4.0, 0.0]])
    T = 20.0
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        zs = sum(math.exp(v / T) for v in s_row)
        zt = sum(math.exp(v / T) for v in t_row)
        for s, t in zip(s_row, t_row):
            p = math.exp(t / T) / zt
            q = math.exp(s / T) / zs
            total += p * math.log(p / q)
    assert soft_label_loss(student, teacher, T).item() == pytest.approx(total / 2, rel=1e-5)
    assert soft_label_loss(teacher, teacher, T).item() == pytest.approx(0.0, abs=1e-7)


def test_mixed_label_loss_weights_both_labels():
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    partner = torch.tensor([1, 0])
    ce = torch.nn.functional.cross_entropy
    expected = 0.7 * ce(logits, labels) + 0.3 * ce(logits, labels[partner])
    assert mixed_label_loss(logits, labels, partner, 0.7).item() == pytest.approx(expected.item())


def test_schedules():
    assert SOFT.lr_factor(0, 300) == 1.0
    assert SOFT.lr_factor(150, 300) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert [HARD.lr_factor(e, 60) for e in (0, 39, 40, 49, 50, 59)] == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.04])


def test_default_epochs_and_batches():
    assert SOFT.default_epochs(10, 10) == 300
    assert [HARD.default_epochs(ipc, 10) for ipc in (10, 50, 100, 500)] == [2000, 1500, 1000, 500]
    assert HARD.default_epochs(10, 100) == 1333
    assert SOFT.default_batch_size(10, 10, 100) == 50
    assert SOFT.default_batch_size(50, 100, 5000) == 200
    assert SOFT.default_batch_size(10, 3, 30) == 30                  # never more than the set
    assert HARD.default_batch_size(10, 10, 100) == 64


def test_validation_epochs():
    assert [e for e in range(1, 301) if SOFT.validates_after(e, 300)] == [250, 260, 270, 280, 290, 300]
    assert [e for e in range(1, 4) if SOFT.validates_after(e, 3)] == [3]


def test_soft_optimizer_decays_weights_only():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(4, 4), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))
    decayed, plain = SOFT.make_optimizer(model).param_groups
    assert decayed["weight_decay"] == 0.01 and all(p.ndim > 1 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 4       # conv bias, norm weight and bias, linear bias


def test_shuffle_patches_moves_whole_patches():
    torch.manual_seed(0)
    x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).expand(8, 3, 4, 4)
    out = augment.shuffle_patches(x, 2)
    for image in out:
        patches = {tuple(image[0, r:r + 2, c:c + 2].flatten().tolist()) for r in (0, 2) for c in (0, 2)}
        assert patches == {(0, 1, 4, 5), (2, 3, 6, 7), (8, 9, 12, 13), (10, 11, 14, 15)}
    assert len({tuple(image.flatten().tolist()) for image in out}) > 1


def test_cutmix_pastes_a_box_of_the_partner():
    torch.manual_seed(3)
    x = torch.stack([torch.full((3, 16, 16), float(i)) for i in range(4)])
    mixed, partner, lam = augment.cutmix(x)
    for i in range(4):
        own = (mixed[i] == i).float().mean().item()
        assert own == pytest.approx(lam if partner[i] != i else 1.0)
        assert set(mixed[i].unique().tolist()) <= {float(i), float(partner[i])}


@pytest.mark.parametrize("name", ["soft", "hard"])
def test_augment_gives_normalised_float_batches(name):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    out = PROTOCOLS[name].augment(x)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    assert -2.2 < out.min() and out.max() < 2.8
