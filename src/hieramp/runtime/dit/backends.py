"""DiT backends: torch (the reference) and onnxruntime (runs the exported step graph).

The contract, shaped like VAR's so that the bench's timing proxy wraps either:
begin(labels_B, plan) checks the run; put(tensor) moves a CPU tensor to the backend;
step(i, x, t, y, cfg, mask, beta, want_mass) -> (guided output, cfg-diff saliency, attention
mass or None) runs sampling step i; decode(latents) -> images in [0, 1] (the VAE, in torch).
"""
import numpy as np
import onnxruntime as ort
import torch

from ...errors import UserError
from ...export.dit import STEP_GRAPH, DiTExportManifest
from ...model.dit.amp import gain
from ...model.dit.step import guided_step
from ...model.dit.vae import decode


class _DiTBackend:
    name: str
    artifact_id = None

    def __init__(self, model, device):
        self.device = torch.device(device)
        self.vae = model.vae.to(self.device)

    def put(self, tensor):
        return tensor.to(self.device)

    def decode(self, latents):
        return decode(self.vae, latents)


class TorchStep(_DiTBackend):
    name = "torch"

    def __init__(self, model, device="cpu"):
        super().__init__(model, device)
        self.dit = model.dit.to(self.device)
        self.layers = ()

    def begin(self, labels_B, plan):
        self.layers = plan.layers if plan is not None else ()

    @torch.no_grad()
    def step(self, i, x, t, y, cfg, mask, beta, want_mass):
        g = None if mask is None else gain(mask, beta)
        return guided_step(self.dit, x, t, y, cfg, g, self.layers, self.layers if want_mass else ())


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
        self.num_tokens = model.cfg.num_tokens
        self.artifact_id = self.manifest.artifact_id

    def begin(self, labels_B, plan):
        if plan is not None and tuple(plan.layers) != self.manifest.amp_layers:
            exported = ",".join(map(str, self.manifest.amp_layers))
            raise UserError(f"export {self.manifest.directory} amplifies blocks {list(self.manifest.amp_layers)}, this run "
                            f"asks for {list(plan.layers)}: pass --amp-layers {exported} or re-export with the blocks you want")

    def step(self, i, x, t, y, cfg, mask, beta, want_mass):
        if mask is None:
            mask = torch.zeros(x.shape[0], self.num_tokens)
        feeds = {"x": x.float().numpy(), "t": t.numpy(), "y": y.numpy(), "cfg": np.array(cfg, np.float32),
                 "mask": mask.float().numpy(), "beta": np.array(beta, np.float32)}
        guided, saliency, mass = (torch.from_numpy(a) for a in self.session.run(None, feeds))
        return guided, saliency, mass


BACKENDS = {"torch": TorchStep, "onnxruntime": OrtStep}
