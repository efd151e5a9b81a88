"""`hieramp doctor`: versions, devices, and per backend whether it is usable here and why not."""
import importlib.metadata
import importlib.util

import torch

from hieramp.cli import main
from hieramp.commands import doctor


def sections(out: str) -> dict:
    """{section: {name: value}} from the printed report."""
    parsed = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            current = parsed.setdefault(line, {})
        else:
            name, value = line.split(None, 1)
            current[name] = value
    return parsed


def test_report_names_versions_devices_and_reasons(capsys):
    assert main(["doctor"]) == 0
    report = sections(capsys.readouterr().out)
    assert list(report) == ["versions", "devices", "backends and plugin"]
    versions, devices, usable = report.values()
    assert versions["torch"] == torch.__version__ and versions["onnx"] == importlib.metadata.version("onnx")
    assert {"python", "hieramp", "onnxruntime", "TensorRT", "TensorRT-RTX", "triton"} <= set(versions)
    if importlib.util.find_spec("tensorrt_rtx_bindings"):
        import tensorrt_rtx_bindings
        assert versions["TensorRT-RTX"] == tensorrt_rtx_bindings.__version__
    if importlib.util.find_spec("tensorrt") is None:
        assert versions["TensorRT"] == "tensorrt is not installed"
        assert usable["hieramp::TopKBiasAttention"].startswith("not usable: tensorrt is not installed")
    assert "cores" in devices["cpu"]
    assert usable["torch"].startswith("usable: cpu") and usable["onnxruntime"].startswith("usable: cpu")
    if not torch.cuda.is_available():
        assert devices["cuda"].startswith("none (")
        assert usable["tensorrt"].startswith("not usable:") and "runs no engines here" in usable["tensorrt"]
        assert usable["triton-kernel"].startswith("not usable: needs a CUDA GPU")


def test_checks_say_why_not():
    checks = {c.name: c for c in doctor.backends()}
    assert set(checks) == {"torch", "onnxruntime", "tensorrt", "hieramp::TopKBiasAttention", "triton-kernel"}
    assert checks["torch"].usable and all(c.detail for c in checks.values())
    if importlib.util.find_spec("tensorrt_rtx_bindings"):
        assert "TensorRT-RTX" in checks["tensorrt"].detail and "ahead of time" in checks["tensorrt"].detail
    if not torch.cuda.is_available():
        assert not checks["triton-kernel"].usable and "TRITON_INTERPRET=1" in checks["triton-kernel"].detail
