import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from hieramp.dit import DiT, DiTConfig, load_dit
from hieramp.errors import UserError
from hieramp.model.dit.config import dit_xl_2


def reference_forward(sd, cfg: DiTConfig, x, t, y):
    """DiT's forward written out on the raw state dict, independently of hieramp.model.dit.transformer."""
    p, D, H = cfg.patch_size, cfg.hidden_size, cfg.num_heads
    B, C, side, _ = x.shape
    g = side // p
    tokens = []                                                    # patches row by row, each (B, D)
    for r in range(g):
        for c in range(g):
            patch = x[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p].reshape(B, -1)
            tokens.append(patch @ sd["x_embedder.proj.weight"].reshape(D, -1).T + sd["x_embedder.proj.bias"])
    h = torch.stack(tokens, 1) + sd["pos_embed"]
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half) / half)
    ang = t.float()[:, None] * freqs
    tf = torch.cat([ang.cos(), ang.sin()], 1)
    temb = F.linear(F.silu(F.linear(tf, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])),
                    sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])
    c = temb + sd["y_embedder.embedding_table.weight"][y]

    def ln(v):
        return (v - v.mean(-1, keepdim=True)) / torch.sqrt(v.var(-1, unbiased=False, keepdim=True) + 1e-6)

    for i in range(cfg.depth):
        w = lambda name: (sd[f"blocks.{i}.{name}.weight"], sd[f"blocks.{i}.{name}.bias"])  # noqa: E731
        mods = F.linear(F.silu(c), *w("adaLN_modulation.1")).split(D, dim=1)
        a = ln(h) * (1 + mods[1][:, None]) + mods[0][:, None]
        q, k, v = F.linear(a, *w("attn.qkv")).split(D, dim=-1)
        heads = lambda z: z.reshape(B, -1, H, D // H).transpose(1, 2)  # noqa: E731
        att = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(D // H), -1) @ heads(v)
        h = h + mods[2][:, None] * F.linear(att.transpose(1, 2).reshape(B, -1, D), *w("attn.proj"))
        m = ln(h) * (1 + mods[4][:, None]) + mods[3][:, None]
        h = h + mods[5][:, None] * F.linear(F.gelu(F.linear(m, *w("mlp.fc1")), approximate="tanh"), *w("mlp.fc2"))
    shift, scale = F.linear(F.silu(c), sd["final_layer.adaLN_modulation.1.weight"], sd["final_layer.adaLN_modulation.1.bias"]).split(D, 1)
    o = F.linear(ln(h) * (1 + scale[:, None]) + shift[:, None], sd["final_layer.linear.weight"], sd["final_layer.linear.bias"])
    out = torch.zeros(B, cfg.out_channels, side, side)
    for n in range(g * g):                                         # token n, feature (pr, pc, channel)
        r, col = divmod(n, g)
        out[:, :, r * p:(r + 1) * p, col * p:(col + 1) * p] = o[:, n].reshape(B, p, p, -1).permute(0, 3, 1, 2)
    return out


def test_forward_matches_an_independent_implementation(tiny_dit_model):
    dit = tiny_dit_model.dit
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 8, 8, generator=gen)
    t, y = torch.tensor([999, 371, 0]), torch.tensor([0, 9, 10])       # 10: the unconditional label
    with torch.no_grad():
        ours = dit(x, t, y)
        ref = reference_forward(dit.state_dict(), dit.cfg, x, t, y)
    assert ours.shape == (3, 8, 8, 8)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def official_xl2_keys():
    """DiT-XL/2 (256 px) parameter names and shapes as the official models.py defines them."""
    D, p, C, T = 1152, 2, 4, 256
    keys = {"pos_embed": (1, T, D), "x_embedder.proj.weight": (D, C, p, p), "x_embedder.proj.bias": (D,),
            "t_embedder.mlp.0.weight": (D, 256), "t_embedder.mlp.0.bias": (D,),
            "t_embedder.mlp.2.weight": (D, D), "t_embedder.mlp.2.bias": (D,),
            "y_embedder.embedding_table.weight": (1001, D),
            "final_layer.linear.weight": (p * p * 2 * C, D), "final_layer.linear.bias": (p * p * 2 * C,),
            "final_layer.adaLN_modulation.1.weight": (2 * D, D), "final_layer.adaLN_modulation.1.bias": (2 * D,)}
    for i in range(28):
        for name, (rows, cols) in {"attn.qkv": (3 * D, D), "attn.proj": (D, D), "mlp.fc1": (4 * D, D),
                                   "mlp.fc2": (D, 4 * D), "adaLN_modulation.1": (6 * D, D)}.items():
            keys[f"blocks.{i}.{name}.weight"], keys[f"blocks.{i}.{name}.bias"] = (rows, cols), (rows,)
    return keys


def test_dit_xl_2_has_the_official_keys_and_shapes():
    with torch.device("meta"):
        dit = DiT(dit_xl_2())
    ours = {k: tuple(v.shape) for k, v in dit.state_dict().items()}
    assert ours == official_xl2_keys()
    assert sum(math.prod(s) for s in ours.values()) == 675_129_632


def test_load_reads_the_configuration_from_the_file(tmp_path, tiny_dit_model):
    sd = tiny_dit_model.dit.state_dict()
    torch.save(sd, tmp_path / "plain.pt")
    loaded = load_dit(tmp_path / "plain.pt", num_heads=2)
    assert loaded.cfg == tiny_dit_model.cfg
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, sd[k])


def test_load_takes_the_ema_weights_of_a_training_checkpoint(tmp_path, tiny_dit_model):
    sd = tiny_dit_model.dit.state_dict()
    noisy = {k: v + 1 for k, v in sd.items()}
    torch.save({"model": noisy, "ema": sd, "opt": {"state": {}, "param_groups": []},
                "args": argparse.Namespace(model="DiT-XL/2", image_size=256)}, tmp_path / "0400000.pt")
    loaded = load_dit(tmp_path / "0400000.pt", num_heads=2)
    assert torch.equal(loaded.state_dict()["blocks.0.attn.qkv.weight"], sd["blocks.0.attn.qkv.weight"])


def test_heads_come_from_the_official_sizes(tmp_path):
    cfg = DiTConfig(input_size=4, patch_size=2, hidden_size=384, depth=1, num_heads=6, num_classes=3)
    torch.save(DiT(cfg).state_dict(), tmp_path / "s.pt")
    assert load_dit(tmp_path / "s.pt").cfg == cfg


def test_unofficial_width_needs_heads(tmp_path, tiny_dit_model):
    torch.save(tiny_dit_model.dit.state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(UserError, match=r"not an official DiT size \(384, 768, 1024, 1152\): pass the number of heads with --heads"):
        load_dit(tmp_path / "tiny.pt")
    with pytest.raises(UserError, match="--heads 3 does not divide the hidden size 32"):
        load_dit(tmp_path / "tiny.pt", num_heads=3)


def test_wrong_keys_and_shapes_are_named(tmp_path, tiny_dit_model):
    sd = dict(tiny_dit_model.dit.state_dict())
    del sd["blocks.1.mlp.fc2.bias"]
    sd["blocks.0.attn.proj.weight"] = torch.zeros(32, 31)
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(UserError) as err:
        load_dit(tmp_path / "bad.pt", num_heads=2)
    msg = str(err.value)
    assert "\n" not in msg
    assert "missing keys ['blocks.1.mlp.fc2.bias']" in msg and "unexpected keys ['extra.weight']" in msg
    assert "blocks.0.attn.proj.weight (32, 31) (expected (32, 32))" in msg


def test_a_var_file_is_refused_as_dit(tmp_path):
    torch.save({"word_embed.weight": torch.zeros(4, 2), "lvl_1L": torch.zeros(1, 1)}, tmp_path / "var_d16.pth")
    with pytest.raises(UserError, match="is a VAR checkpoint, not a DiT one"):
        load_dit(tmp_path / "var_d16.pth")
