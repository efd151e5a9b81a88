"""Finding TensorRT or TensorRT-RTX, with the reasons when neither is usable."""
import importlib.util

import pytest

from hieramp import UserError
from hieramp import trt_import

TENSORRT_MISSING = importlib.util.find_spec("tensorrt") is None


def test_probe_gives_a_module_or_a_reason_per_flavour():
    probed = trt_import.probe()
    assert list(probed) == ["tensorrt", "tensorrt-rtx"]
    for flavour, (found, reason) in probed.items():
        assert (found is None) != (reason is None)
        if found is not None:
            assert found.flavour == flavour and found.module.__version__ == found.version


def test_tensorrt_rtx_builds_ahead_of_time(rtx):
    assert rtx.flavour == "tensorrt-rtx" and rtx.name == f"TensorRT-RTX {rtx.version}" and rtx.builds_without_gpu
    assert trt_import.load("tensorrt-rtx") == rtx
    if TENSORRT_MISSING:
        assert trt_import.load() == rtx                      # TensorRT first, TensorRT-RTX when it is missing


@pytest.mark.skipif(not TENSORRT_MISSING, reason="TensorRT is installed")
def test_missing_tensorrt_is_explained():
    found, reason = trt_import.try_flavour("tensorrt")
    assert found is None and reason == "tensorrt is not installed (pip install 'tensorrt>=10.6')"
    with pytest.raises(UserError, match=r"no usable TensorRT here: tensorrt is not installed \(pip install"):
        trt_import.load("tensorrt")


def test_unknown_flavour():
    with pytest.raises(UserError, match="unknown TensorRT flavour 'trt': use one of tensorrt, tensorrt-rtx"):
        trt_import.load("trt")
