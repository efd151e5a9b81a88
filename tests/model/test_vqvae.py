from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hieramp.errors import UserError
from hieramp.model.config import TINY_VAE, VQVAEConfig
from hieramp.model.vqvae import VQVAE, AttnBlock, phi_indices

REFERENCE = Path(__file__).parents[1] / "reference" / "vae_ch160v4096z32.keys.tsv"


def read_reference(path):
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), dtype))
    return rows


@pytest.fixture(scope="module")
def official():
    with torch.device("meta"):  # shapes only, no memory
        return VQVAE(VQVAEConfig())


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return VQVAE(TINY_VAE).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, TINY_VAE.image_size, TINY_VAE.image_size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_state_dict_equals_official_keys(official):
    got = [(k, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for k, t in official.state_dict().items()]
    assert got == read_reference(REFERENCE)
    assert VQVAEConfig().image_size == 256


def test_phi_tick_selection(official):
    # S = 10, K = 4: scales 2 and 7 lie exactly halfway between two ticks; float64 rounding sends both up.
    assert phi_indices(10, 4) == (0, 0, 1, 1, 1, 2, 2, 3, 3, 3)
    assert phi_indices(4, 4) == (0, 1, 2, 3)
    q = official.quantize
    assert [q.phi(si) for si in range(10)] == [q.quant_resi.qresi_ls[i] for i in (0, 0, 1, 1, 1, 2, 2, 3, 3, 3)]


def test_phi_formula(tiny):
    phi = tiny.quantize.phi(1)
    h = torch.randn(2, TINY_VAE.Cvae, 4, 4)  # (B, Cv, P, P)
    expected = 0.5 * h + 0.5 * F.conv2d(h, phi.weight, phi.bias, padding=1)
    torch.testing.assert_close(phi(h), expected)


def test_unsupported_phi_layout_is_a_clear_error():
    with pytest.raises(UserError, match="share_quant_resi"):
        VQVAE(replace(TINY_VAE, share_quant_resi=1))


def test_attention_is_single_head_scaled_dot_product():
    torch.manual_seed(0)
    attn = AttnBlock(64)
    x = torch.randn(2, 64, 3, 5)  # (B, C, H, W)
    q, k, v = attn.qkv(attn.norm(x)).reshape(2, 3, 64, 15).transpose(2, 3).unbind(1)  # 3 x (B, HW, C)
    h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 64, 3, 5)  # (B, C, H, W)
    torch.testing.assert_close(attn(x), x + attn.proj_out(h), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_tiny_shapes(tiny, images):
    P = TINY_VAE.patch_nums[-1]
    f = tiny.quant_conv(tiny.encoder(images))
    assert f.shape == (2, TINY_VAE.Cvae, P, P)
    idx_list = tiny.img_to_idx(images)
    assert [tuple(i.shape) for i in idx_list] == [(2, pn * pn) for pn in TINY_VAE.patch_nums]
    assert all(i.dtype == torch.int64 and 0 <= i.min() and i.max() < TINY_VAE.vocab_size for i in idx_list)
    img = tiny.fhat_to_img(f)
    assert img.shape == images.shape and img.abs().max() <= 1
    L = sum(pn * pn for pn in TINY_VAE.patch_nums)
    assert tiny.idx_to_var_input(idx_list).shape == (2, L - 1, TINY_VAE.Cvae)


@torch.no_grad()
def test_vq_update_chain_equals_var_input(tiny, images):
    idx_list = tiny.img_to_idx(images)
    P = TINY_VAE.patch_nums[-1]
    f_hat = torch.zeros(2, TINY_VAE.Cvae, P, P)
    inputs = []
    for si, idx_Bl in enumerate(idx_list):
        before = f_hat.clone()
        new_f_hat, next_BlCv = tiny.vq_update(si, idx_Bl, f_hat)
        assert torch.equal(f_hat, before)  # never in place
        f_hat = new_f_hat
        if si < len(idx_list) - 1:
            assert next_BlCv.shape == (2, TINY_VAE.patch_nums[si + 1] ** 2, TINY_VAE.Cvae)
            inputs.append(next_BlCv)
        else:
            assert next_BlCv is None
    torch.testing.assert_close(tiny.idx_to_var_input(idx_list), torch.cat(inputs, 1), rtol=0, atol=0)


@torch.no_grad()
def test_img_to_idx_picks_nearest_code_of_each_residual(tiny, images):
    """Each scale's ids are the codes nearest to the area-downsampled residual f - f_hat."""
    idx_list = tiny.img_to_idx(images)
    f = tiny.quant_conv(tiny.encoder(images))  # (B, Cv, P, P)
    codebook = tiny.quantize.embedding.weight  # (V, Cv)
    f_hat = torch.zeros_like(f)
    for si, (pn, idx_Bl) in enumerate(zip(TINY_VAE.patch_nums, idx_list)):
        rest = F.interpolate(f - f_hat, size=(pn, pn), mode="area")  # (B, Cv, pn, pn)
        dist = torch.cdist(rest.flatten(2).transpose(1, 2), codebook)  # (B, pn * pn, V)
        assert torch.equal(dist.argmin(-1), idx_Bl)
        f_hat, _ = tiny.vq_update(si, idx_Bl, f_hat)


def test_forward_straight_through(images):
    torch.manual_seed(0)
    vae = VQVAE(TINY_VAE)
    recon, vq_loss = vae(images)
    assert recon.shape == images.shape and vq_loss.ndim == 0 and torch.isfinite(vq_loss)
    with torch.no_grad():
        f_hat = torch.zeros(2, TINY_VAE.Cvae, 4, 4)
        for si, idx_Bl in enumerate(vae.img_to_idx(images)):
            f_hat, _ = vae.vq_update(si, idx_Bl, f_hat)
        torch.testing.assert_close(recon.clamp(-1, 1), vae.fhat_to_img(f_hat), rtol=1e-5, atol=1e-5)
    (recon.square().mean() + vq_loss).backward()
    for name in ("encoder.conv_in.weight", "decoder.conv_out.weight", "quantize.embedding.weight",
                 "quantize.quant_resi.qresi_ls.0.weight", "quant_conv.weight", "post_quant_conv.weight"):
        grad = vae.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
