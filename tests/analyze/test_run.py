import math
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from hieramp.analyze import analyze, parse_schedules
from hieramp.errors import UserError
from hieramp.model.amp_config import AmpConfig
from hieramp.model.presets import random_model
from hieramp.runtime.generator import Generator
from hieramp.runtime.images import to_uint8

AMP = AmpConfig(layers=(1,))                # tiny has 2 blocks: amplify the last
SCHEDULES = parse_schedules("none;5;5,0.5,5")
CLASSES, IPC = [0, 4, 7], 2


@pytest.fixture(scope="module")
def generator():
    return Generator(random_model("tiny"))


@pytest.fixture(scope="module")
def analysis(generator, tmp_path_factory):
    grids = tmp_path_factory.mktemp("grids")
    # batch 3 with 2 images per class: batches straddle classes
    return analyze(generator, CLASSES, IPC, SCHEDULES, AMP, seed=3, batch_size=3, grid_dir=grids, progress=False), grids


def bits_and_coverage(ids, vocab):
    counts = Counter(ids.reshape(-1).tolist())
    total = sum(counts.values())
    return -sum(n / total * math.log2(n / total) for n in counts.values()), len(counts) / vocab


def test_statistics_equal_those_of_each_class_generated_alone(generator, analysis):
    result, _ = analysis
    V = generator.cfg.vae.vocab_size
    for s in SCHEDULES:
        for row, c in enumerate(CLASSES):
            alone = generator.run([c] * IPC, seed=3, amp=s.amp_config(AMP), indices=range(IPC))
            for si, ids in enumerate(alone.tokens):
                bits, cov = bits_and_coverage(ids, V)
                assert result.entropy[s.name][row, si] == pytest.approx(bits, abs=1e-12)
                assert result.coverage[s.name][row, si] == cov


def test_same_seeds_across_schedules_so_only_amplified_scales_differ(analysis):
    result, _ = analysis
    base = result.entropy["none"]                                              # (C, S)
    for s in SCHEDULES[1:]:
        assert np.array_equal(result.entropy[s.name][:, 0], base[:, 0])        # scale 0 is never amplified
    assert not np.array_equal(result.entropy["5"], base)                       # beta 5 changes tokens
    assert result.plans["none"] is None and result.plans["5,0.5,5"].beta == (5.0, 5.0, 0.5, 5.0)


def test_rise_shares_per_amplifying_schedule_and_stage(analysis):
    result, _ = analysis
    shares = result.rise_shares()
    assert list(shares) == ["5", "5,0.5,5"]
    assert result.stages == {"coarse": (1,), "mid": (2,), "fine": (3,)}
    for by_metric in shares.values():
        for metric, by_stage in by_metric.items():
            assert list(by_stage) == ["coarse", "mid", "fine"]
            assert all(share * len(CLASSES) in (0, 1, 2, 3) for share in by_stage.values())
    values = result.entropy
    rises = np.mean(values["5"][:, 3] > values["none"][:, 3])
    assert shares["5"]["entropy"]["fine"] == rises


def test_grid_shows_each_seed_under_every_schedule_side_by_side(generator, analysis):
    _, grids = analysis
    assert sorted(p.name for p in grids.iterdir()) == ["0.png", "4.png", "7.png"]
    png = np.asarray(Image.open(grids / "4.png").convert("RGB"))
    cell, pad = 64, 2                                                          # 8 px images upscaled 8x
    assert png.shape == (IPC * (cell + pad) + pad, len(SCHEDULES) * (cell + pad) + pad, 3)
    for col, s in enumerate(SCHEDULES):
        images = generator.run([4] * IPC, seed=3, amp=s.amp_config(AMP), indices=range(IPC)).images
        for row, image in enumerate(images):
            expected = to_uint8(image.repeat_interleave(8, 1).repeat_interleave(8, 2))
            y, x = pad + row * (cell + pad), pad + col * (cell + pad)
            assert np.array_equal(png[y:y + cell, x:x + cell], expected)


def test_amplifying_a_model_without_class_tokens_is_refused_before_generating():
    plain = Generator(random_model("tiny-plain"))
    with pytest.raises(UserError, match="needs a model with class tokens"):
        analyze(plain, [0], 1, SCHEDULES, AMP, progress=False)


def test_a_model_without_class_tokens_can_be_measured_without_amplification():
    plain = Generator(random_model("tiny-plain"))
    result = analyze(plain, [2, 2], 1, [], progress=False)                  # the baseline is added
    assert [s.name for s in result.schedules] == ["none"] and result.classes == [2]
    assert result.entropy["none"].shape == (1, 4) and result.rise_shares() == {}
    assert result.entropy["none"][0, 0] == 0.0 and result.coverage["none"][0, 0] == 1 / 64   # one token at scale 0
    assert all(result.coverage["none"][0, si] <= pn * pn / 64 for si, pn in enumerate(result.patch_nums))
