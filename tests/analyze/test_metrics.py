import math

import numpy as np
import pytest
import torch

from hieramp.analyze.metrics import coverage, entropy_bits, rise_shares, stage_means, token_histogram


def test_histogram_counts_every_code_of_any_shape():
    ids = torch.tensor([[3, 1, 3], [0, 3, 1]])
    assert token_histogram(ids, 5).tolist() == [1, 2, 0, 3, 0]


@pytest.mark.parametrize("ids, vocab, bits, cov", [
    ([7, 7, 7, 7], 16, 0.0, 1 / 16),                          # one code: no uncertainty
    ([0, 0, 1, 1], 4, 1.0, 0.5),                              # two codes, equally often
    (list(range(8)) * 3, 16, 3.0, 0.5),                       # eight codes, uniform
    (list(range(64)), 64, 6.0, 1.0),                          # the whole codebook once: log2 V
    ([0, 0, 0, 1], 8, -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)), 0.25),
])
def test_entropy_in_bits_and_coverage_of_hand_made_tokens(ids, vocab, bits, cov):
    counts = token_histogram(torch.tensor(ids), vocab)
    assert entropy_bits(counts) == pytest.approx(bits, abs=1e-12)
    assert coverage(counts) == cov


def test_entropy_ignores_token_order_and_counts_only_shares():
    a = token_histogram(torch.tensor([1, 2, 2, 3]), 8)
    b = token_histogram(torch.tensor([2, 3, 2, 1, 2, 2, 1, 3]), 8)
    assert entropy_bits(a) == pytest.approx(entropy_bits(b))


STAGES_S5 = {"coarse": (1,), "mid": (2, 3), "fine": (4,)}


def test_stage_means_average_each_class_over_its_stage_scales():
    values = np.array([[9.0, 1.0, 2.0, 4.0, 5.0]])             # (C=1, S=5)
    means = stage_means(values, STAGES_S5)
    assert {k: v.tolist() for k, v in means.items()} == {"coarse": [1.0], "mid": [3.0], "fine": [5.0]}


def test_rise_share_counts_classes_strictly_above_the_baseline():
    baseline = np.array([[0, 1.0, 1.0, 1.0, 1.0],
                         [0, 1.0, 1.0, 1.0, 1.0],
                         [0, 1.0, 1.0, 1.0, 1.0],
                         [0, 1.0, 1.0, 1.0, 1.0]])
    values = np.array([[5, 2.0, 0.0, 3.0, 0.5],                # mid mean 1.5: rises
                       [5, 1.0, 1.0, 1.0, 0.5],                # equal is not a rise
                       [5, 0.5, 0.9, 1.0, 2.0],                # mid mean 0.95
                       [5, 1.5, 1.2, 1.2, 0.9]])
    shares = rise_shares(values, baseline, STAGES_S5)
    assert shares == {"coarse": 0.5, "mid": 0.5, "fine": 0.25}


def test_rise_share_of_a_stage_without_scales_is_none():
    values = np.ones((3, 2))
    assert rise_shares(values, values * 0, {"coarse": (1,), "mid": (), "fine": ()}) == \
        {"coarse": 1.0, "mid": None, "fine": None}
