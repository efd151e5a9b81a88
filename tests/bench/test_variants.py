import torch

from hieramp import Generator
from hieramp.bench.variants import paper_amp, variant_models, without_class_tokens
from hieramp.model.amp_config import AmpConfig


def test_base_variant_shares_weights_and_drops_class_tokens(tiny_model):
    base = without_class_tokens(tiny_model)
    assert base.cfg.cls_token_scales == () and not hasattr(base.var, "cls_tokens")
    own = dict(tiny_model.var.named_parameters())
    for name, p in base.var.named_parameters():
        assert p.data_ptr() == own[name].data_ptr(), name
    assert base.source.fingerprint != tiny_model.source.fingerprint
    images = Generator(base).run([0, 3], amp=AmpConfig(enabled=False)).images
    assert images.shape == (2, 3, 8, 8) and torch.isfinite(images).all()


def test_three_variants_of_a_class_token_model(tiny_model):
    models, skipped = variant_models(tiny_model)
    assert list(models) == ["base", "cls", "amp"] and skipped == {}
    assert models["cls"][0] is models["amp"][0] is tiny_model
    assert models["cls"][1].resolve(tiny_model.cfg) is None
    plan = models["amp"][1].resolve(tiny_model.cfg)
    assert (plan.mode, plan.beta[1], plan.rho[1], plan.layers) == ("logit", 5.0, 0.5, (1,))


def test_plain_model_is_its_own_base(tiny_plain_model):
    models, skipped = variant_models(tiny_plain_model)
    assert list(models) == ["base"] and models["base"][0] is tiny_plain_model
    assert set(skipped) == {"cls", "amp"} and "no class tokens" in skipped["cls"]


def test_paper_block_at_depth_16():
    assert paper_amp(16).layers == (14,)
