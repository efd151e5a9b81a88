"""DiT backends: torch (the reference) and onnxruntime (runs the exported step graph); TensorRT
in `trt_step`.

They keep the backend contract (`runtime/backends/base.Backend`: check, begin, decode, put,
fetch, the optional capabilities) with the denoiser's step in place of VAR's
(docs/design.md, "A second backbone"), so that the bench's timing proxy wraps either backbone.
`runtime.dit.loop.denoise` calls begin, then step per sampling step, then decode.
"""
import numpy as np
import onnxruntime as ort
import torch

from ...errors import UserError
from ...export.dit import STEP_GRAPH, DiTExportManifest
from ...export.manifest import check_amp_plan
from ...model.dit.amp import gain
from ...model.dit.step import guided_step
from ...model.dit.vae import decode
from ..backends.base import Backend


class _DiTBackend(Backend):
    def __init__(self, model, device):
        super().__init__(model.cfg, device, torch.float32)
        self.vae = model.vae.to(self.device)

    def begin(self, labels_B, plan):
        """Start a batch: labels (B,) int64; `plan` a `DiTAmpPlan` or None."""
        self.check(len(labels_B), plan)
        self.plan = plan

    def step(self, i: int, x, t, y, cfg: float, mask, beta: float, want_mass: bool):
        """Sampling step i on latents x (B, C, h, w) at original timesteps t (B,) int64 for labels y
        (B,): the guided output (B, out_channels, h, w), the cfg-diff saliency (B, N) and, with
        `want_mass`, the attention mass at the amplified blocks (B, N) (else None). `mask` (B, N)
        0/1 or None amplifies the plan's blocks by 1 + (beta - 1) mask."""
        raise NotImplementedError

    def decode(self, latents):
        """Images (B, 3, H, W) float32 in [0, 1]: the SD VAE, in torch on this device."""
        return decode(self.vae, latents)


class TorchStep(_DiTBackend):
    name = "torch"

    def __init__(self, model, device="cpu"):
        super().__init__(model, device)
        self.dit = model.dit.to(self.device)

    @torch.no_grad()
    def step(self, i, x, t, y, cfg, mask, beta, want_mass):
        layers = self.plan.layers if self.plan is not None else ()
        g = None if mask is None else gain(mask, beta)
        return guided_step(self.dit, x, t, y, cfg, g, layers, layers if want_mass else ())


class OrtStep(_DiTBackend):
    """The step graph on ONNX Runtime's CPU provider; the export must come from this model."""
    name = "onnxruntime"

    def __init__(self, model, device="cpu", export_dir=None, threads=None):
        if export_dir is None:
            raise UserError("--backend onnxruntime runs an export: pass --export DIR (made by `hieramp export`)")
        if torch.device(device).type != "cpu":
            raise UserError("the DiT onnxruntime backend runs on the CPU: pass --device cpu")
        super().__init__(model, "cpu")
        self.manifest = DiTExportManifest.read(export_dir)
        self.manifest.check_model(model)
        self.manifest.verify_files()
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.manifest.directory / STEP_GRAPH), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own types for bad protobufs and graphs
            raise UserError(f"cannot load {STEP_GRAPH} of {export_dir} ({str(err).splitlines()[0]}): re-run `hieramp export`") from None
        self.artifact_id = self.manifest.artifact_id

    def check(self, batch_size, plan):
        check_amp_plan(self.manifest, plan, f"export {self.manifest.directory}", "re-export")

    def step(self, i, x, t, y, cfg, mask, beta, want_mass):
        if mask is None:
            mask = torch.zeros(x.shape[0], self.cfg.num_tokens)
        feeds = {"x": x.float().numpy(), "t": t.numpy(), "y": y.numpy(), "cfg": np.array(cfg, np.float32),
                 "mask": mask.float().numpy(), "beta": np.array(beta, np.float32)}
        guided, saliency, mass = (torch.from_numpy(a) for a in self.session.run(None, feeds))
        return guided, saliency, mass
