"""A tiny export (function form) and its TensorRT-RTX engines, built once for the engine tests."""
import pytest

from hieramp.cli import main
from hieramp.engine import EngineManifest
from hieramp.export.exporter import export_model

BATCH_SIZES = (1, 2)


@pytest.fixture(scope="session")
def rtx():
    """The TensorRT-RTX bindings; tests that build engines skip without them."""
    pytest.importorskip("tensorrt_rtx_bindings", reason="needs TensorRT-RTX (pip install -e '.[tensorrt-rtx]')")
    from hieramp.engine.trt_import import load
    return load("tensorrt-rtx")


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_model):
    return export_model(tiny_model, tmp_path_factory.mktemp("engine") / "export", amp_layers=(1,), max_batch=2,
                        progress=False)


@pytest.fixture(scope="session")
def tiny_engines(rtx, tiny_export):
    """Built through the command line, as a user would."""
    out = tiny_export.directory.parent / "engines"
    assert main(["build", str(tiny_export.directory), "--out", str(out), "--flavour", "tensorrt-rtx",
                 "--batch-sizes", ",".join(map(str, BATCH_SIZES))]) == 0
    return EngineManifest.read(out)
