"""`hieramp doctor`: versions of the libraries hieramp uses, the devices seen, and for each backend
and the TensorRT plugin whether it is usable here and, if not, why."""
import importlib.metadata
import importlib.util
import os
import platform
from dataclasses import dataclass

import torch

from .. import trt_import
from ..runtime.backends import availability, cuda_reason
from ..trt_import import NAMES, TENSORRT, TENSORRT_RTX


@dataclass(frozen=True)
class Check:
    name: str
    usable: bool
    detail: str


def _version(*distributions) -> str:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> list:
    tensorrt = trt_import.probe()
    rows = [("python", platform.python_version()), ("hieramp", _version("hieramp")), ("torch", torch.__version__),
            ("onnx", _version("onnx")), ("onnxruntime", _version("onnxruntime", "onnxruntime-gpu"))]
    for flavour, (found, reason) in tensorrt.items():
        rows.append((NAMES[flavour], found.version if found else reason.split(" (")[0]))
    rows.append(("triton", _version("triton")))
    return rows


def devices() -> list:
    rows = [("cpu", f"{os.cpu_count()} cores, {platform.machine()}")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            rows.append((f"cuda:{i}", f"{torch.cuda.get_device_name(i)}, compute capability {major}.{minor}"))
    else:
        rows.append(("cuda", f"none ({cuda_reason()})"))
    return rows


def backends() -> list:
    cuda = torch.cuda.is_available()
    checks = [_devices_check("torch"), _devices_check("onnxruntime"), _tensorrt_check(cuda)]
    checks.append(_plugin_check())
    checks.append(_triton_check(cuda))
    return checks


def _devices_check(name: str) -> Check:
    """A backend that runs on the CPU and maybe on CUDA, as the registry says."""
    on_cpu, on_cuda = availability(name, "cpu"), availability(name, "cuda")
    if on_cpu is not None:
        return Check(name, False, on_cpu)
    return Check(name, True, "cpu" + (" and cuda" if on_cuda is None else f"; not cuda: {on_cuda}"))


def _tensorrt_check(cuda: bool) -> Check:
    probed = trt_import.probe()
    found = {flavour: trt for flavour, (trt, _) in probed.items() if trt is not None}
    reasons = [reason for _, reason in probed.values() if reason]
    if not found:
        return Check("tensorrt", False, f"no TensorRT: {'; '.join(reasons)}")
    names = ", ".join(trt.name for trt in found.values())
    builds = ([f"{found[TENSORRT].name} on this GPU"] if TENSORRT in found and cuda else []) + \
        ([f"{found[TENSORRT_RTX].name} ahead of time (no GPU needed)"] if TENSORRT_RTX in found else [])
    build = f"builds engines with {' or '.join(builds)}" if builds else "cannot build: TensorRT needs a CUDA GPU"
    reason = availability("tensorrt", "cuda")
    if reason is not None:
        return Check("tensorrt", False, f"{names} found; {build}; runs no engines here: {reason}")
    return Check("tensorrt", True, f"{names}; {build}; runs engines on cuda")


def _plugin_check() -> Check:
    from ..plugins.trt_plugin import PLUGIN_ID, plugin_support
    reason = plugin_support()
    if reason is not None:
        return Check(PLUGIN_ID, False, f"{reason}; engines compute the op with its ONNX function body")
    return Check(PLUGIN_ID, True, "`hieramp build` registers it and uses it for the op nodes")


def _triton_check(cuda: bool) -> Check:
    name = "triton-kernel"
    if importlib.util.find_spec("triton") is None:
        return Check(name, False, "triton is not installed (pip install triton); the torch backend uses the reference op")
    if not cuda:
        return Check(name, False, f"needs a CUDA GPU ({cuda_reason()}); runs on the CPU only in Triton's interpreter "
                                  f"(TRITON_INTERPRET=1), for tests")
    return Check(name, True, "the torch backend uses it on cuda")


def report() -> str:
    width = 28

    def section(title, rows):
        return [title] + [f"  {name:<{width}}{value}" for name, value in rows]

    checks = [(c.name, f"{'usable' if c.usable else 'not usable'}: {c.detail}") for c in backends()]
    lines = section("versions", versions()) + section("devices", devices()) + section("backends and plugin", checks)
    return "\n".join(lines)


def add_parser(subparsers):
    p = subparsers.add_parser("doctor", help="show versions, devices and which backends are usable here",
                              description=__doc__)
    p.set_defaults(run=run)


def run(args):
    print(report())
