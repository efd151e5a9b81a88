"""`export_dit`: a DiTModel -> an export directory with the denoiser step as one ONNX graph.

Inputs x (B, C, h, w), t (B,) original timesteps, y (B,) labels, cfg, mask (B, N) and beta;
outputs the guided model output, the cfg-diff saliency and the attention mass at the amplified
blocks (what the next step's mask reads). The amplification is plain ONNX (Add, Mul), the
amplified blocks fixed at export; beta = 1 runs the graph unamplified. Sampling updates and the
VAE stay in torch: they are a few elementwise operations per step and one decode per image.
"""
import importlib.metadata

import torch
from torch import nn

from ..errors import UserError
from ..files import sha256_of, staged_directory
from ..model.amp_config import default_amp_layers
from ..model.dit.amp import DiTAmpPlan, gain
from ..model.dit.step import guided_step
from . import onnx_files
from .exporter import DEFAULT_MAX_BATCH, DEFAULT_OPSET, OPSETS, _trace
from .graphs import BATCH, TRACE_BATCH, GraphSpec, TensorSpec
from .manifest import ExportManifest, model_entry

STEP_NAME = "dit_step"                 # the step graph's file stem, in exports and engine directories
STEP_GRAPH = STEP_NAME + ".onnx"


class StepGraph(nn.Module):
    """The exported step: every input explicit, the amplification always in the graph (beta = 1 is
    exactly no amplification, since x * 1 == x)."""

    def __init__(self, dit, amp_layers):
        super().__init__()
        self.dit, self.amp_layers = dit, tuple(amp_layers)

    def forward(self, x, t, y, cfg, mask, beta):
        return guided_step(self.dit, x, t, y, cfg, gain(mask, beta), self.amp_layers, self.amp_layers)


class DiTExportManifest(ExportManifest):
    FORMAT = "hieramp-dit-onnx-export"
    FORMAT_VERSION = 1
    WHAT = "DiT export directory"

    @property
    def max_batch(self) -> int:
        """The step graph takes any batch; `hieramp build` defaults to 1 and this, as for VAR exports."""
        return DEFAULT_MAX_BATCH


def step_spec(cfg) -> GraphSpec:
    f32, i64 = torch.float32, torch.int64
    latent = (BATCH, cfg.in_channels, cfg.input_size, cfg.input_size)
    return GraphSpec(STEP_NAME, inputs=(
        TensorSpec("x", latent, f32), TensorSpec("t", (BATCH,), i64), TensorSpec("y", (BATCH,), i64),
        TensorSpec("cfg", (), f32), TensorSpec("mask", (BATCH, cfg.num_tokens), f32), TensorSpec("beta", (), f32),
    ), outputs=(
        TensorSpec("guided", (BATCH, cfg.out_channels, cfg.input_size, cfg.input_size), f32),
        TensorSpec("cfg_diff", (BATCH, cfg.num_tokens), f32), TensorSpec("attention_mass", (BATCH, cfg.num_tokens), f32),
    ))


def export_dit(model, out, amp_layers=None, opset=DEFAULT_OPSET):
    cfg = model.cfg
    amp_layers = tuple(sorted(set(amp_layers))) if amp_layers is not None else default_amp_layers(cfg.depth)
    if not amp_layers:
        raise UserError("a DiT export needs amplified blocks (beta = 1 runs them unamplified): pass --amp-layers")
    if any(not 0 <= layer < cfg.depth for layer in amp_layers):
        raise UserError(f"--amp-layers {list(amp_layers)}: this DiT has blocks 0-{cfg.depth - 1}")
    if opset not in OPSETS:
        raise UserError(f"opset {opset} is not supported: use {OPSETS.start}-{OPSETS.stop - 1}")
    B, gen = TRACE_BATCH, torch.Generator().manual_seed(0)
    args = (torch.randn(B, cfg.in_channels, cfg.input_size, cfg.input_size, generator=gen), torch.tensor([999, 500]),
            torch.arange(B), torch.tensor(4.0), (torch.rand(B, cfg.num_tokens, generator=gen) < 0.5).float(), torch.tensor(5.0))
    spec = step_spec(cfg)
    dit = model.dit.cpu().eval()
    with staged_directory(out, "a DiT export directory", DiTExportManifest.describes) as staging:
        traced = _trace(StepGraph(dit, amp_layers), spec, args, opset, staging.parent)
        onnx_files.apply_spec(traced, spec)
        onnx_files.save(traced, staging / STEP_GRAPH)
        onnx_files.check(staging / STEP_GRAPH)
        DiTExportManifest.write(staging, {
            "backbone": "dit", "model": model_entry(model), "amp": {"layers": list(amp_layers), "mode": DiTAmpPlan.mode},
            "opset": opset, "dtype": "fp32", "graphs": {"step": STEP_GRAPH},
            "tools": {name: importlib.metadata.version(name) for name in ("hieramp", "torch", "onnx")},
            "files": {p.name: sha256_of(p) for p in sorted(staging.iterdir())},
        })
    return DiTExportManifest.read(out)
