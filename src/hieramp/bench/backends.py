"""Building one backend for one variant, exporting the model first where the backend runs an export.

A backend that cannot run here (its module, the export API, the engine builder, a GPU missing)
raises `BackendUnavailable`, and the benchmark reports its column as unavailable instead of failing.
"""
import importlib
from pathlib import Path

import torch

from ..errors import UserError
from ..runtime.backends import backend_class

# What builds a backend's artifacts: backend -> (module, function, what it is).
EXPORTER = ("hieramp.export.exporter", "export_model", "the ONNX export")
ENGINE_BUILDER = ("hieramp.build", "build_engines", "the TensorRT engine builder")


class BackendUnavailable(Exception):
    """This backend cannot run on this machine or in this build; the message says why."""


def _api(module, function, what):
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError):
        raise BackendUnavailable(f"{what} ({module}.{function}) is not in this build") from None


def backend_device(backend: str, device: str) -> str:
    """TensorRT always runs on the GPU; the others run where --device says."""
    return "cuda" if backend == "tensorrt" else device


def check_available(backend: str, device: str):
    """The backend's class, or BackendUnavailable; cheap enough to ask before loading any model."""
    if torch.device(backend_device(backend, device)).type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("no CUDA device here")
    try:
        cls = backend_class(backend)
    except UserError as err:
        raise BackendUnavailable(str(err)) from None
    if backend != "torch":
        _api(*EXPORTER)
    if backend == "tensorrt":
        _api(*ENGINE_BUILDER)
    return cls


def export_variant(model, amp, key: str, export_root: Path, op_form: str, batch_sizes) -> Path:
    """The model exported with the variant's amplification layers; kept under `export_root` and
    reused by later runs (the directory name holds the model fingerprint and every option)."""
    plan = amp.resolve(model.cfg)
    out = Path(export_root) / f"{model.source.fingerprint}-{key}-{op_form}-b{max(batch_sizes)}"
    if not (out / "manifest.json").is_file():
        _api(*EXPORTER)(model, out, amp_layers=plan.layers if plan else (), amp_mode=plan.mode if plan else "logit",
                        op_form=op_form, max_batch=max(batch_sizes))
    return out


def make_backend(backend: str, model, amp, variant: str, device: str, export_root: Path, batch_sizes, threads=None):
    cls = check_available(backend, device)
    try:
        if backend == "torch":
            return cls(model, device=device)
        if backend == "onnxruntime":
            export_dir = export_variant(model, amp, variant, export_root, "function", batch_sizes)
            return cls(model, device=device, export_dir=export_dir, threads=threads)
        export_dir = export_variant(model, amp, variant, export_root, "plugin", batch_sizes)
        engine_dir = export_dir.with_name(export_dir.name + "-engines")
        if not (engine_dir / "manifest.json").is_file():
            _api(*ENGINE_BUILDER)(export_dir, engine_dir, batch_sizes=tuple(batch_sizes))
        return cls(model, device="cuda", engine_dir=engine_dir)
    except UserError as err:
        raise BackendUnavailable(str(err).splitlines()[0]) from None
