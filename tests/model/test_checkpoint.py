import pytest
import torch

from hieramp import UserError, load_model
from hieramp.model.checkpoint import infer_var_config
from hieramp.model.config import official_var
from hieramp.model.var import VAR


def save(obj, path):
    torch.save(obj, path)
    return path


@pytest.fixture
def files(tmp_path, tiny_model):
    var_sd = tiny_model.var.state_dict()
    vae_sd = tiny_model.vae.state_dict()
    C = tiny_model.cfg.embed_dim
    finetune = dict(var_sd, **{"class_head.weight": torch.randn(10, C), "class_head.bias": torch.zeros(10)})
    return {
        "plain": save(var_sd, tmp_path / "var_d2.pth"),
        "finetune": save({"trainer": {"var_wo_ddp": finetune}, "args": {"lr": 1.0}}, tmp_path / "ar-ckpt-last.pth"),
        "vae": save(vae_sd, tmp_path / "vae.pth"),
    }


@pytest.mark.parametrize("form", ["plain", "finetune"])
def test_all_file_forms_round_trip(files, tiny_model, form):
    model = load_model(files[form], files["vae"])
    assert model.cfg == tiny_model.cfg
    for name, ref in [("var", tiny_model.var), ("vae", tiny_model.vae)]:
        loaded = getattr(model, name).state_dict()
        for key, value in ref.state_dict().items():
            assert torch.equal(loaded[key], value), key
    assert len(model.source.var_sha256) == 64


def test_config_read_from_official_keys():
    with torch.device("meta"):
        sd = VAR(official_var(20, cls_token_scales=(1, 2, 3))).state_dict()
    sd["lvl_1L"] = torch.cat([torch.full((pn * pn,), s) for s, pn in enumerate((1, 2, 3, 4, 5, 6, 8, 10, 13, 16))])[None]
    cfg = infer_var_config(sd)
    assert (cfg.depth, cfg.embed_dim, cfg.num_heads, cfg.num_classes) == (20, 1280, 20, 1000)
    assert cfg.patch_nums == (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    assert cfg.cls_token_scales == (1, 2, 3) and cfg.attn_l2_norm and not cfg.shared_aln


def test_unexpected_and_missing_keys_are_named(files, tmp_path, tiny_model):
    sd = dict(tiny_model.var.state_dict())
    sd["blocks.0.attn.extra"] = torch.zeros(1)
    del sd["head.bias"]
    bad = save(sd, tmp_path / "bad.pth")
    with pytest.raises(UserError, match=r"missing keys \['head.bias'\].*unexpected keys \['blocks.0.attn.extra'\]"):
        load_model(bad, files["vae"])


def test_wrong_shape_is_named(files, tmp_path, tiny_model):
    sd = dict(tiny_model.vae.state_dict())
    sd["quant_conv.bias"] = torch.zeros(3)
    with pytest.raises(UserError, match=r"quant_conv.bias \(3,\)"):
        load_model(files["plain"], save(sd, tmp_path / "vae_bad.pth"))


class NotATensor:
    pass


def test_pickled_objects_need_trust(files, tmp_path, tiny_model):
    obj = {"trainer": {"var_wo_ddp": tiny_model.var.state_dict()}, "extra": NotATensor()}
    path = save(obj, tmp_path / "ar-ckpt-objects.pth")
    with pytest.raises(UserError, match="--trust-checkpoint"):
        load_model(path, files["vae"])
    assert load_model(path, files["vae"], trust_checkpoint=True).cfg == tiny_model.cfg


def test_missing_and_corrupt_files(files, tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_model(tmp_path / "nope.pth", files["vae"])
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(files["plain"].read_bytes()[:200])
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_model(corrupt, files["vae"])
    with pytest.raises(UserError, match="is this a VAR checkpoint"):
        load_model(files["vae"], files["vae"])
