import os

import pytest
import torch

from hieramp.cli import main
from hieramp.engine import EngineManifest
from hieramp.export.exporter import export_model
from hieramp.model.presets import random_model

ENGINE_BATCH_SIZES = (1, 2)   # of the tiny engines the TensorRT tests share

# Triton kernels run on CPU tensors through its interpreter when there is no GPU; the variable
# must be set before anything imports triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model():
    """The seeded random-init `tiny` preset (class tokens at every scale)."""
    return random_model("tiny")


@pytest.fixture(scope="session")
def tiny_plain_model():
    return random_model("tiny-plain")


@pytest.fixture(scope="session")
def rtx():
    """The TensorRT-RTX bindings; tests that build engines skip without them."""
    pytest.importorskip("tensorrt_rtx_bindings", reason="needs TensorRT-RTX (pip install -e '.[tensorrt-rtx]')")
    from hieramp.trt_import import load
    return load("tensorrt-rtx")


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_model):
    """A tiny export (function form), made once for the engine tests."""
    return export_model(tiny_model, tmp_path_factory.mktemp("engine") / "export", amp_layers=(1,), max_batch=2,
                        progress=False)


@pytest.fixture(scope="session")
def tiny_engines(rtx, tiny_export):
    """Built through the command line, as a user would."""
    out = tiny_export.directory.parent / "engines"
    assert main(["build", str(tiny_export.directory), "--out", str(out), "--flavour", "tensorrt-rtx",
                 "--batch-sizes", ",".join(map(str, ENGINE_BATCH_SIZES))]) == 0
    return EngineManifest.read(out)


@pytest.fixture(scope="module")
def one_torch_thread():
    """The tiny model gains nothing from intra-op threads, and with `pytest -n 2` on two cores the
    OpenMP threads of both workers oversubscribe the CPU and slow these tests down five times."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
