import json
from dataclasses import replace

import torch

from hieramp.cli import main
from hieramp.model.amp_config import AmpConfig
from hieramp.model.checkpoint import load_model
from hieramp.runtime.generator import Generator
from hieramp.train.data import to_rgb
from hieramp.train.fit import Schedule, reproducible
from hieramp.train.var import DIGITS_VAR, TokenData, finetune_class_tokens, hieramp_checkpoint, pretrain_var
from hieramp.train.vqvae import DIGITS_VAE, VAE_SCHEDULE, train_vqvae

TWO_STEPS = Schedule(steps=2, batch_size=8, lr=1e-3, warmup=1)


def test_train_command_smoke_writes_files_load_model_reads(tmp_path):
    out = tmp_path / "model"
    assert main(["train", "--out", str(out), "--vae-steps", "2", "--var-steps", "2", "--finetune-steps", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ar-ckpt-digits.pth", "heldout.npz", "training.json", "vae-digits.pth"]
    record = json.loads((out / "training.json").read_text())
    assert record["recipe"]["pretrain"]["steps"] == 2 and record["train_images"] == 1438
    assert set(record["seconds"]) == {"vqvae", "tokenize", "var", "class_tokens"}
    model = load_model(out / "ar-ckpt-digits.pth", out / "vae-digits.pth")
    assert model.cfg.cls_token_scales == tuple(range(6)) and model.cfg.depth == DIGITS_VAR.depth
    assert Generator(model).run([3, 7], amp=AmpConfig(layers=(3,))).images.shape == (2, 3, 16, 16)


def token_data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    L, V, Cv = DIGITS_VAR.seq_len, DIGITS_VAE.vocab_size, DIGITS_VAE.Cvae
    return TokenData(torch.randint(V, (n, L), generator=g), torch.randn(n, L - 1, Cv, generator=g),
                     torch.arange(n) % 10)


def test_var_training_and_fine_tune_are_reproducible():
    data = token_data()
    runs = []
    for _ in range(2):
        with reproducible(0):
            plain, losses = pretrain_var(data, 0, schedule=TWO_STEPS, progress=False)
            var, head, ft_losses, cls_losses = finetune_class_tokens(plain, data, 0, schedule=TWO_STEPS, progress=False)
        runs.append((hieramp_checkpoint(var, head)["trainer"]["var_wo_ddp"], losses + ft_losses + cls_losses))
    (a, la), (b, lb) = runs
    assert la == lb and set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith("cls_tokens") for k in plain.state_dict())
    assert {f"cls_tokens.{s}" for s in range(6)} | {"class_head.weight", "class_head.bias"} <= set(a)


def test_vqvae_training_is_reproducible_and_reduces_the_loss(digits_split):
    images = to_rgb(digits_split[0].images[:64])
    schedule = replace(VAE_SCHEDULE, steps=6, batch_size=16, warmup=1)
    results = []
    for _ in range(2):
        with reproducible(0):
            results.append(train_vqvae(images, 0, schedule=schedule, progress=False))
    (vae_a, losses_a, restarted_a), (vae_b, losses_b, _) = results
    assert losses_a == losses_b and losses_a[-1] < losses_a[0]
    assert restarted_a[0] > 0                                  # the first restart moves unused codes
    assert all(torch.equal(x, y) for x, y in zip(vae_a.state_dict().values(), vae_b.state_dict().values()))


def test_demo_distils_both_ways_and_scores_them(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--ipc", "2", "--seeds", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"amplified", "plain"}
    for name in results:
        assert results[name]["num_images"] == 20 and len(results[name]["accuracies"]) == 1
        assert len(list((out / name).glob("*/*.png"))) == 20
        assert (out / f"grid-{name}.png").is_file()
    printed = capsys.readouterr().out
    assert "amplified: accuracy" in printed and "plain: accuracy" in printed
