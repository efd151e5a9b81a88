"""The engine manifest check that `TensorRTBackend` runs before anything else: engines that do not
fit the model, TensorRT, GPU, precision or export are refused with the reason (tested directly:
running engines needs a GPU)."""
import json
import shutil

import pytest

from hieramp import UserError
from hieramp.engine import EngineManifest
from hieramp.trt_import import TensorRT

H200 = {"name": "NVIDIA H200", "compute_capability": "9.0"}


@pytest.fixture
def engine_copy(tiny_engines, tiny_export, tmp_path):
    """A copy of the engines and of their export, the copy's manifest pointing at the export copy."""
    export = tmp_path / "export"
    shutil.copytree(tiny_export.directory, export)
    engines = tmp_path / "engines"
    shutil.copytree(tiny_engines.directory, engines)
    data = json.loads((engines / "manifest.json").read_text())
    data["export"]["directory"] = str(export)
    return EngineManifest.write(engines, data)


def test_matching_engines_pass(tiny_engines, tiny_model, rtx):
    tiny_engines.check(tiny_model, rtx, H200)
    tiny_engines.check(tiny_model, rtx, {"name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"}, "fp32")


def test_other_tensorrt_version_is_refused(tiny_engines, tiny_model, rtx):
    newer = TensorRT(rtx.flavour, "1.8.0.0", rtx.module)
    with pytest.raises(UserError, match=rf"were built with TensorRT-RTX {rtx.version}, this is TensorRT-RTX 1\.8\.0\.0: "
                                        r"rebuild with `hieramp build .*`, or pass --rebuild"):
        tiny_engines.check(tiny_model, newer, H200)
    with pytest.raises(UserError, match="were built with TensorRT-RTX .*, this is TensorRT 10.9.0"):
        tiny_engines.check(tiny_model, TensorRT("tensorrt", "10.9.0", None), H200)


def test_other_precision_is_refused(tiny_engines, tiny_model, rtx):
    with pytest.raises(UserError, match="are fp32, fp16 was asked"):
        tiny_engines.check(tiny_model, rtx, H200, precision="fp16")


def test_changed_export_is_refused(engine_copy, tiny_model, rtx):
    engine_copy.check(tiny_model, rtx, H200)
    manifest = engine_copy.export_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    data["max_batch"] = 4                                   # any change gives the export another artifact id
    manifest.write_text(json.dumps(data, indent=2) + "\n")
    with pytest.raises(UserError, match=r"were built from export artifact \w{12}, and .* now holds artifact \w{12}"):
        engine_copy.check(tiny_model, rtx, H200)
    shutil.rmtree(engine_copy.export_dir)                   # engines run without their export
    engine_copy.check(tiny_model, rtx, H200)


def test_other_model_is_refused(tiny_engines, tiny_plain_model, rtx):
    with pytest.raises(UserError, match=r"were built from model tiny \(random init\) .* not tiny-plain"):
        tiny_engines.check(tiny_plain_model, rtx, H200)


def test_gpu_mismatches_are_refused(engine_copy, tiny_model, rtx):
    with pytest.raises(UserError, match="TensorRT-RTX's default targets .* this GPU .* is 7.5"):
        engine_copy.check(tiny_model, rtx, {"name": "NVIDIA GeForce RTX 2080 Ti", "compute_capability": "7.5"})
    data = dict(engine_copy.data, tensorrt={"flavour": "tensorrt", "version": "10.9.0", "name": "TensorRT 10.9.0"},
                gpu={"target": "device", "name": "NVIDIA A100", "compute_capability": "8.0"})
    device_build = EngineManifest.write(engine_copy.directory, data)
    trt = TensorRT("tensorrt", "10.9.0", None)
    device_build.check(tiny_model, trt, {"name": "NVIDIA A100-SXM4", "compute_capability": "8.0"})
    with pytest.raises(UserError, match=r"were built for NVIDIA A100 \(compute capability 8.0\), this GPU is "
                                        r"NVIDIA H200 \(9.0\)"):
        device_build.check(tiny_model, trt, H200)


def test_damaged_or_missing_engine_is_refused(engine_copy, tiny_model, rtx):
    step = engine_copy.directory / "step.engine"
    data = bytearray(step.read_bytes())
    data[len(data) // 2] ^= 0xFF
    step.write_bytes(bytes(data))
    with pytest.raises(UserError, match="step.engine is damaged"):
        engine_copy.check(tiny_model, rtx, H200)
    step.unlink()
    with pytest.raises(UserError, match="step.engine is missing"):
        engine_copy.check(tiny_model, rtx, H200)


def test_batch_larger_than_built_is_refused(tiny_engines):
    with pytest.raises(UserError, match="built for batch sizes up to 2, not 3"):
        tiny_engines.batch_size_for(3)


def test_not_an_engine_directory(tiny_export, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        EngineManifest.read(tmp_path / "nowhere")
    with pytest.raises(UserError, match="has no manifest.json"):
        EngineManifest.read(tmp_path)
    with pytest.raises(UserError, match="is not a hieramp engine directory manifest: re-run `hieramp build`"):
        EngineManifest.read(tiny_export.directory)
