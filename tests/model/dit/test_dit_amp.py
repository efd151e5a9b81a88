import math

import numpy as np
import pytest
import torch
from PIL import Image

from hieramp.errors import UserError
from hieramp.model.dit.amp import DiTAmpConfig, object_mask
from hieramp.model.dit.diffusion import DiTSampling, batch_latent_noise
from hieramp.runtime.dit.generator import DiTGenerator


@pytest.mark.parametrize("rho", [0.01, 0.25, 0.5, 0.77, 1.0])
def test_mask_has_exactly_k_ones_ties_to_the_lower_index(rho):
    saliency = torch.rand(3, 16)
    saliency[2] = 0.5                                            # all tied
    m = object_mask(saliency, rho)
    k = max(1, math.floor(rho * 16))
    assert m.sum(1).tolist() == [k] * 3 and set(m.unique().tolist()) <= {0.0, 1.0}
    assert m[2, :k].sum() == k
    top = saliency[0].argsort(descending=True)[:k]
    assert m[0, top].sum() == k


def test_beta_one_gives_the_images_of_no_amplification(tiny_dit_model):
    gen = DiTGenerator(tiny_dit_model)
    plain = gen.run([0, 5], seed=1, sampling=DiTSampling(steps=4), amp=None)
    for source in ("cfg-diff", "attention"):
        assert torch.equal(gen.run([0, 5], seed=1, sampling=DiTSampling(steps=4), amp=DiTAmpConfig(beta=1.0, mask=source)).images, plain.images)
    assert not torch.equal(gen.run([0, 5], seed=1, sampling=DiTSampling(steps=4), amp=DiTAmpConfig(beta=5.0)).images, plain.images)


def test_gain_reaches_only_the_chosen_blocks_and_steps(tiny_dit_model):
    calls = []
    hooks = [block.register_forward_pre_hook(lambda mod, args, i=i: calls.append((i, args[2])))
             for i, block in enumerate(tiny_dit_model.dit.blocks)]
    try:
        result = DiTGenerator(tiny_dit_model).run([2, 7], seed=0, sampling=DiTSampling(steps=5), return_masks=True,
                                                  amp=DiTAmpConfig(beta=3.0, rho=0.25, layers=(1,), steps=(2, 4)))
    finally:
        for h in hooks:
            h.remove()
    depth = tiny_dit_model.cfg.depth
    assert len(calls) == 5 * depth
    amplified = [(n // depth, block) for n, (block, g) in enumerate(calls) if g is not None]
    assert amplified == [(2, 1), (4, 1)]
    for step, (block, g) in ((2, calls[2 * depth + 1]), (4, calls[4 * depth + 1])):
        m = result.masks[step]
        assert m.sum(1).tolist() == [4.0, 4.0]                   # k = floor(0.25 * 16)
        torch.testing.assert_close(g.squeeze(-1), torch.cat([1 + 2 * m, 1 + 2 * m]))
    assert [m is None for m in result.masks] == [True, True, False, True, False]


def test_file_masks_select_the_object(tmp_path, tiny_dit_model):
    model = tiny_dit_model                                        # 16 px images, 4x4 tokens
    big = np.zeros((16, 16), np.uint8)
    big[:8, 8:] = 255                                            # top-right quarter: tokens 2, 3, 6, 7
    small = np.zeros((4, 4), np.uint8)
    small[3, :] = 200                                            # bottom row: tokens 12-15
    (tmp_path / "3").mkdir()
    Image.fromarray(big).save(tmp_path / "3" / "0.png")
    Image.fromarray(small).save(tmp_path / "3" / "1.png")
    result = DiTGenerator(model).run([3, 3], sampling=DiTSampling(steps=3), return_masks=True,
                                     amp=DiTAmpConfig(rho=0.25, mask=f"file:{tmp_path}", steps=(0, 1, 2)))
    assert result.masks[0][0].nonzero().flatten().tolist() == [2, 3, 6, 7]
    assert result.masks[0][1].nonzero().flatten().tolist() == [12, 13, 14, 15]
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "3" / "2.png")
    with pytest.raises(UserError, match=r"mask .*2\.png is 10x10: masks must be 16x16 \(the image\) or 4x4"):
        DiTGenerator(model).run([3], indices=[2], sampling=DiTSampling(steps=2), amp=DiTAmpConfig(mask=f"file:{tmp_path}"))
    with pytest.raises(UserError, match=r"mask .*3\.png is missing"):
        DiTGenerator(model).run([3], indices=[3], sampling=DiTSampling(steps=2), amp=DiTAmpConfig(mask=f"file:{tmp_path}"))


@pytest.mark.parametrize("amp, message", [
    (DiTAmpConfig(steps=(0, 1)), "reads the previous step, so step 0 cannot be amplified"),
    (DiTAmpConfig(mask="segmenter"), "unknown --dit-mask 'segmenter'"),
    (DiTAmpConfig(layers=(3,)), "amplification layer 3 does not exist: this DiT has 3 blocks"),
    (DiTAmpConfig(steps=(4,)), "amplification step 4 does not exist: sampling runs 4 steps"),
    (DiTAmpConfig(rho=0.0), r"--rho must lie in \(0, 1\]"),
    (DiTAmpConfig(mask="file:/nonexistent/masks"), "mask directory /nonexistent/masks does not exist"),
])
def test_bad_amplification_settings(tiny_dit_model, amp, message):
    with pytest.raises(UserError, match=message):
        DiTGenerator(tiny_dit_model).run([0], sampling=DiTSampling(steps=4), amp=amp)


def test_images_do_not_depend_on_the_batch(tiny_dit_model):
    shape = (4, 8, 8)
    alone = batch_latent_noise(7, [3], [2], 5, shape)
    batched = batch_latent_noise(7, [1, 3, 3], [0, 1, 2], 5, shape)
    assert torch.equal(alone[0], batched[2])
    gen = DiTGenerator(tiny_dit_model)
    one = gen.run([3], seed=7, sampling=DiTSampling(steps=5), indices=[1], amp=DiTAmpConfig(mask="attention"))   # [1, 3, 3]: indices 0, 0, 1
    three = gen.run([1, 3, 3], seed=7, sampling=DiTSampling(steps=5), amp=DiTAmpConfig(mask="attention"))
    torch.testing.assert_close(one.images[0], three.images[2], atol=1e-5, rtol=0)
