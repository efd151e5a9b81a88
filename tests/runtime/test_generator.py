import pytest
import torch

from hieramp import AmpConfig, Generator, UserError
from hieramp.model.amp_config import per_scale, stages
from hieramp.model.sampling import SamplingParams

AMP = AmpConfig(layers=(1,))


def test_result_shapes(tiny_model):
    result = Generator(tiny_model).run([1, 4], amp=AMP, return_logits=True)
    cfg = tiny_model.cfg
    assert result.images.shape == (2, 3, cfg.vae.image_size, cfg.vae.image_size)
    assert 0 <= result.images.min() and result.images.max() <= 1
    assert [t.shape for t in result.tokens] == [(2, pn * pn) for pn in cfg.patch_nums]
    assert all(t.dtype == torch.int64 for t in result.tokens)
    assert [x.shape for x in result.logits] == [(2, pn * pn, cfg.vae.vocab_size) for pn in cfg.patch_nums]


def test_same_seed_same_images_other_seed_other_images(tiny_model):
    gen = Generator(tiny_model)
    a, b = gen.run([2, 3], seed=7, amp=AMP), gen.run([2, 3], seed=7, amp=AMP)
    assert torch.equal(a.images, b.images)
    c = gen.run([2, 3], seed=8, amp=AMP)
    assert not all(torch.equal(x, y) for x, y in zip(a.tokens, c.tokens))


def test_batch_size_does_not_change_images(tiny_model):
    gen = Generator(tiny_model)
    labels, indices = [1, 5, 1, 9], [0, 0, 1, 0]
    together = gen.run(labels, seed=3, amp=AMP, indices=indices)
    alone = [gen.run([c], seed=3, amp=AMP, indices=[i]) for c, i in zip(labels, indices)]
    assert torch.equal(together.images, torch.cat([r.images for r in alone]))
    for si, tokens in enumerate(together.tokens):
        assert torch.equal(tokens, torch.cat([r.tokens[si] for r in alone]))


def test_default_indices_count_occurrences(tiny_model):
    gen = Generator(tiny_model)
    twice = gen.run([4, 4], seed=1, amp=AMP)
    assert not torch.equal(twice.images[0], twice.images[1])
    assert torch.equal(gen.run([4], seed=1, amp=AMP, indices=[1]).images[0], twice.images[1])


def test_forced_tokens_reproduce_a_token_path(tiny_model):
    gen = Generator(tiny_model)
    free = gen.run([0, 2], seed=5, amp=AMP, return_logits=True)
    forced = gen.run([0, 2], seed=99, amp=AMP, forced_tokens=free.tokens, return_logits=True)
    assert torch.equal(forced.images, free.images)
    for a, b in zip(forced.logits, free.logits):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_amplification_changes_logits_only_where_enabled(tiny_model):
    gen = Generator(tiny_model)
    free = gen.run([3], seed=0, amp=AmpConfig(enabled=False))
    run = lambda amp: gen.run([3], amp=amp, forced_tokens=free.tokens, return_logits=True).logits
    off, on = run(AmpConfig(enabled=False)), run(AmpConfig(layers=(1,), scales=(2,), beta=5.0))
    diffs = [(a - b).abs().max().item() for a, b in zip(off, on)]
    assert diffs[0] == diffs[1] == 0 and diffs[2] > 1e-4
    neutral = run(AmpConfig(layers=(0, 1), beta=0.0))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(off, neutral))


def test_plain_model_runs_without_class_tokens_and_refuses_amplification(tiny_plain_model):
    gen = Generator(tiny_plain_model)
    assert gen.run([1], amp=AmpConfig(enabled=False)).images.shape[0] == 1
    with pytest.raises(UserError, match="needs a model with class tokens"):
        gen.run([1], amp=AMP)


@pytest.mark.parametrize("amp,message", [
    (AmpConfig(layers=(14,)), "layer 14 does not exist: this model has 2 blocks"),
    (AmpConfig(layers=(1,), rho=0.0), r"rho must lie in \(0, 1\]"),
    (AmpConfig(layers=(1,), rho=1.5), r"rho must lie in \(0, 1\]"),
    (AmpConfig(layers=(1,), mode="bias"), "unknown amplification mode"),
    (AmpConfig(layers=(1,), beta=(1.0, 2.0)), "beta takes 1, 3"),
])
def test_bad_amplification_settings(tiny_model, amp, message):
    with pytest.raises(UserError, match=message):
        Generator(tiny_model).run([0], amp=amp)


def test_bad_labels(tiny_model):
    with pytest.raises(UserError, match=r"class 10 is out of range: this model has 10 classes \(0-9\)"):
        Generator(tiny_model).run([10], amp=AMP)


def test_unknown_backend(tiny_model):
    with pytest.raises(UserError, match="unknown backend 'jax'"):
        Generator(tiny_model, backend="jax")


def test_schedules_expand_per_scale():
    assert stages(10) == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert per_scale((5, 1, 0.5), 10, "beta") == (5, 5, 5, 5, 1, 1, 1, 0.5, 0.5, 0.5)
    assert per_scale(2.0, 4, "beta") == (2.0,) * 4
    assert per_scale(range(4), 4, "beta") == (0, 1, 2, 3)


def test_sampling_params_equal_the_keyword_form(tiny_model):
    gen = Generator(tiny_model)
    keywords = gen.run([3, 6], seed=2, cfg=1.5, top_k=7, top_p=0.8, amp=AMP)
    params = gen.run([3, 6], seed=2, sampling=SamplingParams(1.5, 7, 0.8), amp=AMP)
    assert all(torch.equal(a, b) for a, b in zip(keywords.tokens, params.tokens))
    assert torch.equal(gen.run([3], amp=AMP).images, gen.run([3], sampling=SamplingParams(), amp=AMP).images)
    with pytest.raises(UserError, match="not both"):
        gen.run([3], cfg=1.5, sampling=SamplingParams())
