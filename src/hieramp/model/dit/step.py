"""One guided denoiser step: the conditional and unconditional halves in one batch, guidance on
the first three latent channels as DiT's official sampler does, and the saliency the next step's
mask reads (cfg-diff and attention mass). The torch backend runs it eagerly; `export.dit` traces
it into one ONNX graph with the mask M and beta as inputs."""
import torch

from .amp import cfg_diff_saliency
from .transformer import DiT

GUIDED_CHANNELS = 3      # the official sampler guides channels 0-2 and takes the rest from the conditional half


def guided_step(dit: DiT, x_BCHW, t_B, y_B, cfg, gain_BN1=None, gain_layers=(), mass_layers=()):
    """-> guided output (B, out_channels, H, W), cfg-diff saliency (B, N), attention mass (B, N) or None.

    The mask is per image: its gain and the reported mass are those of the conditional row."""
    B, C = x_BCHW.shape[:2]
    x2, t2 = torch.cat([x_BCHW, x_BCHW]), torch.cat([t_B, t_B])
    y2 = torch.cat([y_B, torch.full_like(y_B, dit.cfg.num_classes)])
    gains = {} if gain_BN1 is None else {layer: torch.cat([gain_BN1, gain_BN1]) for layer in gain_layers}
    out = dit(x2, t2, y2, gains, mass_layers)
    out, mass = out if mass_layers else (out, None)
    cond, uncond = out[:B], out[B:]
    g = GUIDED_CHANNELS
    guided = torch.cat([uncond[:, :g] + cfg * (cond[:, :g] - uncond[:, :g]), cond[:, g:]], dim=1)
    saliency = cfg_diff_saliency(cond[:, :C], uncond[:, :C], dit.cfg.patch_size)
    return guided, saliency, None if mass is None else mass[:B]
