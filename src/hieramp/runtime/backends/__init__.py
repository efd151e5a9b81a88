"""Which backends exist, what artifact each runs, and whether it is usable here.

Backends implement the steps of the scale loop (`base.Backend`) and never a loop of their own.
Heavy optional dependencies are imported only when a backend is used. The command line, the
benchmark and `hieramp doctor` all ask this registry.
"""
import importlib
from dataclasses import dataclass
from typing import Optional

import torch

from ...checks import cuda_missing_reason
from ...errors import UserError


@dataclass(frozen=True)
class BackendInfo:
    name: str
    target: str                       # "module:Class" that runs VAR models
    dit_target: str                   # "module:Class" that runs DiT models (docs/design.md, "A second backbone")
    artifact: Optional[str]           # the constructor keyword naming the directory it runs, or None
    made_by: Optional[str]            # the command that makes that directory
    cuda_only: bool = False


BACKENDS = {info.name: info for info in (
    BackendInfo("torch", "hieramp.runtime.backends.torch_backend:TorchBackend", "hieramp.runtime.dit.backends:TorchStep",
                None, None),
    BackendInfo("onnxruntime", "hieramp.runtime.backends.ort_backend:OrtBackend", "hieramp.runtime.dit.backends:OrtStep",
                "export_dir", "hieramp export"),
    BackendInfo("tensorrt", "hieramp.runtime.backends.trt_backend:TensorRTBackend", "hieramp.runtime.dit.trt_step:TrtStep",
                "engine_dir", "hieramp build", cuda_only=True),
)}


def _unknown(name: str) -> str:
    return f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}"


def _import(name: str, backbone: str = "var"):
    """(class, None), or (None, why its module does not import)."""
    info = BACKENDS[name]
    module, cls = (info.dit_target if backbone == "dit" else info.target).split(":")
    try:
        return getattr(importlib.import_module(module), cls), None
    except ModuleNotFoundError as err:
        return None, f"{err.name} is not installed (pip install {err.name})"


def backend_class(name: str, backbone: str = "var"):
    """The class of backend `name` for a model of `backbone` ("var" or "dit")."""
    if name not in BACKENDS:
        raise UserError(_unknown(name))
    cls, reason = _import(name, backbone)
    if cls is None:
        raise UserError(f"backend {name!r} is not available here ({reason}); run `hieramp doctor` to see why")
    return cls


def device_for(name: str, device) -> str:
    """Where backend `name` runs when asked for `device`: TensorRT always on the GPU."""
    return "cuda" if name in BACKENDS and BACKENDS[name].cuda_only else str(device)


def cuda_reason() -> Optional[str]:
    """Why torch has no CUDA device here, or None."""
    return None if torch.cuda.is_available() else cuda_missing_reason()


def availability(name: str, device) -> Optional[str]:
    """None when backend `name` can run on `device` here, else why not. Loads no model."""
    if name not in BACKENDS:
        return _unknown(name)
    device = torch.device(device)
    if device.type == "cuda" and cuda_reason() is not None:
        return cuda_reason()
    cls, reason = _import(name)
    return reason if cls is None else cls.unavailable(device)
