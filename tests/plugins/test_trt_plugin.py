"""The TensorRT plugin's registration guard and the PTX it hands TensorRT. TensorRT itself is not
installable on the CPU CI, so registration and execution are not tested here."""
import importlib.util
import re
import subprocess

import pytest
import torch

from hieramp.plugins import trt_plugin

PARAMS_IN_TRT_ORDER = ["q", "k", "v", "beta", "rho", "H", "n", "P", "o"]
KERNEL_INDEX = {name: i for i, name in enumerate(trt_plugin.KERNEL_PARAMS)}


def entry_params(ptx: str, name: str) -> list:
    entry = re.search(rf"\.entry {name}\((.*?)\n\)", ptx, re.S).group(1)
    return [line.strip().rstrip(",") for line in entry.strip().splitlines()]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_not_registered_without_tensorrt():
    assert trt_plugin.plugin_support().startswith("tensorrt is not installed")
    assert trt_plugin.register_if_available() is False


def test_ptx_parameters_follow_tensorrt_launch_order():
    """TensorRT passes inputs, extra scalars, outputs; the rewritten entry declares exactly those,
    and the result still assembles."""
    pytest.importorskip("triton")
    from triton.backends.nvidia.compiler import get_ptxas

    from hieramp.plugins.aot import compile_kernel
    kernel = compile_kernel(90, torch.float16, 64, "logit", 0.125)
    ptx = trt_plugin.trt_entry_ptx(kernel.ptx, kernel.name)
    params = entry_params(ptx, kernel.name)
    assert [int(p.rsplit("_", 1)[1]) for p in params] == [KERNEL_INDEX[n] for n in PARAMS_IN_TRT_ORDER]
    assert [p.split()[1] for p in params] == [".u64"] * 5 + [".u32"] * 3 + [".u64"]
    body = ptx[ptx.index(".reqntid"):]
    assert body == kernel.ptx[kernel.ptx.index(".reqntid"):]            # only the declarations moved
    target = re.search(r"^\.target\s+(\w+)", ptx, re.M).group(1)
    done = subprocess.run([get_ptxas(90).path, f"--gpu-name={target}", "-", "-o", "/dev/null"], input=ptx,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_ptx_with_a_used_extra_parameter_is_refused():
    decls = ",\n".join(f"\t.param .u64 k_param_{i}" for i in range(10))
    ptx = f".entry k(\n{decls}\n)\n{{\n\tld.param.b64 %rd1, [k_param_9];\n}}\n"
    with pytest.raises(ValueError, match="uses its parameter k_param_9"):
        trt_plugin.trt_entry_ptx(ptx, "k")
