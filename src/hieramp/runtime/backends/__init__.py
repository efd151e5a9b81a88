"""Backends implement the steps of the scale loop (begin, step, sample, update, decode) and
never a loop of their own. Heavy optional dependencies are imported only when a backend is used."""
import importlib

from ...errors import UserError

BACKENDS = {
    "torch": "hieramp.runtime.backends.torch_backend:TorchBackend",
    "onnxruntime": "hieramp.runtime.backends.ort_backend:OrtBackend",
    "tensorrt": "hieramp.runtime.backends.trt_backend:TensorRTBackend",
}


def backend_class(name: str):
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as err:
        raise UserError(f"backend {name!r} is not available here ({err}); run `hieramp doctor` to see why") from None
