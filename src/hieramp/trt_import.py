"""Lazy import of TensorRT (`tensorrt` >= 10.6) or TensorRT-RTX (`tensorrt_rtx_bindings`).

Neither is imported before an engine is built or run, so the rest of hieramp works without them.
`probe` says for each flavour whether it is usable and, if not, why; `load` returns one or raises
a `UserError` carrying those reasons.
"""
import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Optional

from .errors import UserError

TENSORRT, TENSORRT_RTX = "tensorrt", "tensorrt-rtx"
FLAVOURS = (TENSORRT, TENSORRT_RTX)
MODULES = {TENSORRT: "tensorrt", TENSORRT_RTX: "tensorrt_rtx_bindings"}
MIN_VERSION = {TENSORRT: (10, 6), TENSORRT_RTX: (1, 0)}
INSTALL = {TENSORRT: "pip install 'tensorrt>=10.6'",
           TENSORRT_RTX: "pip install tensorrt-rtx-cu12-bindings tensorrt-rtx-cu12-libs"}
NAMES = {TENSORRT: "TensorRT", TENSORRT_RTX: "TensorRT-RTX"}


@dataclass(frozen=True)
class TensorRT:
    flavour: str          # "tensorrt" or "tensorrt-rtx"
    version: str
    module: ModuleType

    @property
    def name(self) -> str:
        return f"{NAMES[self.flavour]} {self.version}"

    @property
    def builds_without_gpu(self) -> bool:
        """TensorRT-RTX compiles ahead of time; TensorRT times kernels on the GPU it builds for."""
        return self.flavour == TENSORRT_RTX


def _version_tuple(version: str) -> tuple:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def try_flavour(flavour: str):
    """(TensorRT, None) when `flavour` imports and is new enough, else (None, why not)."""
    module_name = MODULES[flavour]
    if importlib.util.find_spec(module_name) is None:
        return None, f"{module_name} is not installed ({INSTALL[flavour]})"
    try:
        module = importlib.import_module(module_name)
    except (ImportError, OSError) as err:     # a wheel without its shared libraries
        return None, f"{module_name} is installed but does not import ({str(err).splitlines()[0]})"
    version = getattr(module, "__version__", "0")
    if _version_tuple(version) < MIN_VERSION[flavour]:
        wanted = ".".join(map(str, MIN_VERSION[flavour]))
        return None, f"{module_name} {version} is too old: hieramp needs {wanted} or newer ({INSTALL[flavour]})"
    return TensorRT(flavour, version, module), None


def probe() -> dict:
    """flavour -> (TensorRT or None, reason it is unusable or None), in order of preference."""
    return {flavour: try_flavour(flavour) for flavour in FLAVOURS}


def load(flavour: Optional[str] = None) -> TensorRT:
    """The requested flavour, or the first usable one (TensorRT, then TensorRT-RTX)."""
    if flavour is not None and flavour not in FLAVOURS:
        raise UserError(f"unknown TensorRT flavour {flavour!r}: use one of {', '.join(FLAVOURS)}")
    found = {f: try_flavour(f) for f in ([flavour] if flavour else FLAVOURS)}
    for trt, _ in found.values():
        if trt is not None:
            return trt
    reasons = "; ".join(reason for _, reason in found.values())
    raise UserError(f"no usable TensorRT here: {reasons}")
