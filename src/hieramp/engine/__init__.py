"""TensorRT engines: build an export's graphs with TensorRT or TensorRT-RTX (`build_engines`) and
describe them for the runtime (`EngineManifest`). TensorRT is imported only when used."""
from .builder import build_engines
from .manifest import EngineManifest

__all__ = ["EngineManifest", "build_engines"]
