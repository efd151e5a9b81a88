"""The DiT step on TensorRT: the engine `hieramp build` makes from a DiT export, on a CUDA GPU.

One execution context per built batch size, with its input and output buffers allocated once; a
smaller batch runs padded to the next built size. The engine manifest is checked against the
model, this TensorRT, this GPU and the export as for VAR (`engine.rebuild.open_engines`). Needs
a CUDA GPU: nothing here runs on a CPU-only machine.
"""
import torch

from ...engine.manifest import describe_gpu
from ...engine.rebuild import open_engines
from ...engine.runner import Engine
from ...errors import UserError
from ...export.dit import step_spec
from ...export.graphs import BATCH, STEP
from ...export.manifest import check_amp_plan
from ..backends.trt_backend import TensorRTBackend, cuda_device
from .backends import _DiTBackend


class _Context:
    """Built batch size B: an execution context bound once to buffers that never move."""

    def __init__(self, engine: Engine, profile: int, B: int, cfg, device):
        self.inputs = {t.name: torch.zeros([B if d == BATCH else d for d in t.dims], dtype=engine.dtype(t.name), device=device)
                       for t in step_spec(cfg).inputs}
        self.scratch = torch.empty(engine.scratch_bytes(profile), dtype=torch.uint8, device=device)
        self.ctx = engine.context(profile, self.scratch)
        self.outputs = engine.bind(self.ctx, self.inputs)          # guided, cfg_diff, attention_mass


class TrtStep(_DiTBackend):
    name = "tensorrt"

    def __init__(self, model, device="cuda", engine_dir=None, rebuild=False):
        """`rebuild`: rebuild engines that do not fit (another TensorRT, GPU or export) from their
        export instead of refusing them."""
        if engine_dir is None:
            raise UserError("the tensorrt backend runs engines: pass --engine DIR (made by `hieramp build` from a DiT export)")
        device = cuda_device(device)
        torch.cuda.set_device(device)
        manifest, tensorrt = open_engines(engine_dir, model, describe_gpu(device), rebuild)
        super().__init__(model, device)
        self.manifest, self.artifact_id = manifest, manifest.artifact_id
        self.logger = tensorrt.module.Logger(tensorrt.module.Logger.ERROR)          # must outlive the runtime
        self.runtime = tensorrt.module.Runtime(self.logger)
        self.engine = Engine(tensorrt, self.runtime, manifest.engine(STEP))
        self._contexts = {}

    unavailable = TensorRTBackend.unavailable

    def check(self, batch_size, plan):
        check_amp_plan(self.manifest, plan, f"engine directory {self.manifest.directory}", "export and build")
        self.manifest.batch_size_for(batch_size)

    @torch.no_grad()
    def step(self, i, x, t, y, cfg, mask, beta, want_mass):
        rows = x.shape[0]
        B = self.manifest.batch_size_for(rows)
        if B not in self._contexts:
            self._contexts[B] = _Context(self.engine, self.manifest.profile(STEP, B), B, self.cfg, self.device)
        c = self._contexts[B]
        if mask is None:
            mask = torch.zeros(rows, self.cfg.num_tokens)
        for name, value in {"x": x, "t": t, "y": y, "mask": mask}.items():
            c.inputs[name][:rows].copy_(value)
            c.inputs[name][rows:].zero_()
        c.inputs["cfg"].fill_(float(cfg))
        c.inputs["beta"].fill_(float(beta))
        self.engine.run(c.ctx)
        guided, saliency, mass = (c.outputs[name][:rows].clone() for name in ("guided", "cfg_diff", "attention_mass"))
        return guided, saliency, mass
