"""Opening an engine directory for a run: engines that do not fit this TensorRT, GPU, precision
or their export any more are refused with the reason, or rebuilt from their export when asked."""
from .. import trt_import
from ..errors import UserError
from ..trt_import import NAMES, TENSORRT, TensorRT
from .builder import build_engines
from .manifest import EngineManifest


def tensorrt_for(manifest: EngineManifest, rebuild: bool) -> TensorRT:
    """The TensorRT flavour the engines were built with; with `rebuild`, any usable one."""
    tensorrt, reason = trt_import.try_flavour(manifest.flavour)
    if tensorrt is not None:
        return tensorrt
    if rebuild:
        return trt_import.load()
    raise UserError(f"the engines in {manifest.directory} need {NAMES[manifest.flavour]}, which is not usable here "
                    f"({reason}): install it, or pass --rebuild to rebuild them with the TensorRT that is")


def open_engines(engine_dir, model, gpu: dict, rebuild: bool = False, precision: str = None):
    """(manifest, TensorRT) of engines that fit `model`, this TensorRT and the GPU described by
    `gpu` (`manifest.describe_gpu`; a rebuild targets the current CUDA device). `rebuild`: rebuild
    stale engines in place instead of refusing them. `precision`: refuse (or rebuild) engines of
    another precision."""
    manifest = EngineManifest.read(engine_dir)
    manifest.check_model(model)
    tensorrt = tensorrt_for(manifest, rebuild)
    if rebuild and manifest.stale_reason(tensorrt, gpu, precision) is not None:
        timing_cache = manifest.data["build"]["timing_cache"] if tensorrt.flavour == TENSORRT else None
        manifest = build_engines(manifest.export_dir, manifest.directory, precision or manifest.precision,
                                 manifest.batch_sizes, timing_cache, tensorrt.flavour)
    manifest.check(model, tensorrt, gpu, precision)
    return manifest, tensorrt
