from pathlib import Path

import pytest
import torch

from hieramp.model.config import VQVAEConfig, official_var, tiny_var
from hieramp.model.kv_cache import KVCache
from hieramp.model.var import VAR

REFERENCE = Path(__file__).parents[1] / "reference"


def reference_keys(name):
    rows = [line.split("\t") for line in (REFERENCE / name).read_text().splitlines() if not line.startswith("#")]
    return {key: tuple(int(x) for x in shape.strip("()").split(",") if x.strip()) for key, shape, _ in rows}


@pytest.mark.parametrize("depth", [16, 20, 24, 30])
def test_state_dict_equals_official_keys_and_shapes(depth):
    with torch.device("meta"):
        var = VAR(official_var(depth))
    got = {k: tuple(v.shape) for k, v in var.state_dict().items()}
    assert got == reference_keys(f"var_d{depth}.keys.tsv")


def test_class_tokens_and_shared_adaln_keys():
    with torch.device("meta"):
        var = VAR(official_var(16, cls_token_scales=tuple(range(10))))
        shared = VAR(tiny_var(shared_aln=True))
    keys = set(var.state_dict())
    assert {f"cls_tokens.{s}" for s in range(10)} <= keys
    assert tuple(var.state_dict()["cls_tokens.3"].shape) == (1, 1, 1024)
    shared_keys = set(shared.state_dict())
    assert "shared_ada_lin.1.weight" in shared_keys and "blocks.0.ada_gss" in shared_keys
    assert not any(".ada_lin." in k and k.startswith("blocks") for k in shared_keys)


def cached_logits(var, labels, feats_BLCv):
    """Unguided conditional logits of every scale through the KV-cached path."""
    cfg = var.cfg
    B = len(labels)
    cache = KVCache.for_model(cfg, 2 * B, torch.float32, "cpu")
    cond = var.condition(labels)
    out = []
    first_l = cfg.patch_nums[0] ** 2
    for si, pn in enumerate(cfg.patch_nums):
        if si == 0:
            x = cond.sos
        else:
            start = cfg.scale_offsets[si] - first_l
            x = var.embed_scale(si, feats_BLCv[:, start:start + pn * pn])
        out.append(var.step(si, x, cond, cache, None)[:B])
    return torch.cat(out, dim=1)


@pytest.mark.parametrize("cfg", [tiny_var(), tiny_var(cls_token_scales=()), tiny_var(cls_token_scales=(1, 3)),
                                 tiny_var(shared_aln=True, attn_l2_norm=False),
                                 tiny_var(depth=3, vae=VQVAEConfig(vocab_size=32, Cvae=4, ch=32, ch_mult=(1, 2),
                                                                  num_res_blocks=1, patch_nums=(1, 2, 3, 4, 5, 6, 8, 10)))],
                         ids=["cls", "plain", "some-cls", "shared-noL2", "8-scales"])
def test_kv_cached_inference_equals_teacher_forced_forward(cfg):
    torch.manual_seed(0)
    var = VAR(cfg).eval()
    labels = torch.tensor([1, 7])
    feats = torch.randn(2, cfg.seq_len - 1, cfg.vae.Cvae)
    with torch.no_grad():
        full, cls_out = var(labels, feats)
        cached = cached_logits(var, labels, feats)
    assert full.shape == (2, cfg.seq_len, cfg.vae.vocab_size)
    assert cls_out.shape == (2, len(cfg.cls_token_scales), cfg.embed_dim)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_training_mask_matches_class_token_rules():
    var = VAR(tiny_var(cls_token_scales=(0, 2)))
    mask = var.training_mask("cpu") == 0
    scale_of, is_cls = var.sequence_layout()
    # layout: s0 (1), cls0, s1 (4), s2 (9), cls2, s3 (16)
    assert is_cls.nonzero().flatten().tolist() == [1, 15]
    cls2 = 15
    assert mask[cls2].nonzero().flatten().tolist() == list(range(6, 16))       # own scale + itself
    row_s3 = 16
    assert not mask[row_s3, 1] and not mask[row_s3, cls2]                      # other scales' class tokens hidden
    assert mask[row_s3, :15][~is_cls[:15]].all()                               # all earlier spatial tokens
    assert mask[7, cls2] and not mask[7, 16]                                   # s2 row sees its class token, not s3
