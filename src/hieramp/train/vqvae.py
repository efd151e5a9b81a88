"""Training the multi-scale VQVAE on the digits: pixel L2 plus VAR's VQ loss, with dead codes restarted."""
import torch
import torch.nn.functional as F

from ..model.config import VQVAEConfig
from ..model.vqvae import VQVAE
from .fit import Schedule, fit

DIGITS_VAE = VQVAEConfig(vocab_size=128, Cvae=8, ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_nums=(1, 2, 3, 4, 6, 8))
VAE_SCHEDULE = Schedule(steps=400, batch_size=64, lr=2e-3, warmup=30)
RESTART_EVERY = 50                     # steps between dead-code restarts


@torch.no_grad()
def restart_dead_codes(vae: VQVAE, images_N3HW, generator: torch.Generator) -> int:
    """Codes no scale of `images` uses are moved onto random latent vectors of the first scale
    whose residual they would quantise, so the whole vocabulary stays in use. Returns how many."""
    rest = vae.quant_conv(vae.encoder(images_N3HW))                     # (N, Cv, P, P)
    used = torch.zeros(vae.cfg.vocab_size, dtype=torch.bool)
    candidates = []
    for si in range(len(vae.patch_nums)):
        z = vae.quantize.downsample(si, rest)                            # (N, Cv, pn, pn)
        idx = vae.quantize.nearest(z)                                    # (N, pn * pn)
        used[idx.flatten()] = True
        candidates.append(z.permute(0, 2, 3, 1).reshape(-1, vae.cfg.Cvae))
        rest = rest - vae.quantize.scale_residual(si, vae.quantize.embed(si, idx))
    dead = torch.nonzero(~used).flatten()
    if len(dead):
        pool = torch.cat(candidates)                                     # (sum N pn^2, Cv)
        pick = torch.randint(len(pool), (len(dead),), generator=generator)
        vae.quantize.embedding.weight[dead] = pool[pick]
    return len(dead)


def train_vqvae(images_N3HW, seed: int, cfg: VQVAEConfig = DIGITS_VAE, schedule: Schedule = VAE_SCHEDULE,
                progress=True) -> tuple:
    """A VQVAE for images in [-1, 1]; returns (model in eval mode, per-step losses, restarted codes)."""
    vae = VQVAE(cfg)
    generator = torch.Generator().manual_seed(seed)
    restarted = []
    step = 0

    def loss_fn(idx):
        nonlocal step
        if step % RESTART_EVERY == 0 and step < schedule.steps // 2:
            probe = images_N3HW[torch.randperm(len(images_N3HW), generator=generator)[:256]]
            restarted.append(restart_dead_codes(vae, probe, generator))
        step += 1
        x = images_N3HW[idx]                                              # (b, 3, H, W)
        recon, vq_loss = vae(x)
        return F.mse_loss(recon, x) + vq_loss

    losses = fit(loss_fn, vae.parameters(), len(images_N3HW), schedule, generator, "VQVAE", progress)
    return vae.eval(), losses, restarted
