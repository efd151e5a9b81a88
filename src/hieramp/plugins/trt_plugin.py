"""The TensorRT plugin `hieramp::TopKBiasAttention` (docs/design.md, "The amplification op").

Registered with TensorRT's decorator API (`tensorrt.plugin`, TensorRT >= 10.6) by
`register_if_available`, which the engine builder calls before parsing an export with op nodes;
nothing is imported or registered before that. The implementation is ahead of time: at build
time TensorRT receives the PTX of the Triton kernel (`plugins.aot`, compiled for the build GPU's
architecture) and its launch parameters, and embeds them in the engine, so running the engine
needs no Python. PTX, not the cubin: the driver compiles the PTX for the GPU the engine runs on,
so the sm_80 PTX also serves GPUs newer than the build's (`_arch`). Attributes `scale` and `mode` are fixed at build
time; `beta` and `rho` stay inputs (device scalars).

TensorRT launches an AOT kernel with its inputs, then the extra scalar arguments, then its
outputs; the kernel takes (q, k, v, o, beta, rho, H, n, P, two unused scratch pointers). The
parameter declarations of the PTX entry are reordered to TensorRT's order (the body names its
parameters, so only the declarations move) and the unused scratch pointers are dropped.

Unexecuted here: TensorRT is not installable on the machine this was written on, and TensorRT-RTX
has no `plugin` module. Only the PTX rewriting is tested (it assembles with ptxas).
"""
import functools
import importlib.util
import re
from typing import Optional

from ..trt_import import TENSORRT, try_flavour

PLUGIN_ID = "hieramp::TopKBiasAttention"
# Kernel parameters in the kernel's order (plugins/aot.py) and in TensorRT's launch order.
KERNEL_PARAMS = ("q", "k", "v", "o", "beta", "rho", "H", "n", "P")
TRT_PARAMS = ("q", "k", "v", "beta", "rho", "H", "n", "P", "o")


def plugin_support() -> Optional[str]:
    """None when the plugin can be registered here, else why not."""
    _, reason = try_flavour(TENSORRT)
    if reason is not None:
        return reason
    if importlib.util.find_spec("tensorrt.plugin") is None:
        return "this tensorrt has no tensorrt.plugin module (TensorRT >= 10.6 has it)"
    import tensorrt.plugin as trtp
    if not hasattr(trtp, "aot_impl"):
        return "this tensorrt.plugin has no aot_impl (ahead-of-time plugins need a newer TensorRT)"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install triton): the plugin's kernel is compiled with it"
    return None


@functools.cache
def register_if_available() -> bool:
    """Register the plugin once if TensorRT allows it; whether it is registered."""
    if plugin_support() is not None:
        return False
    import tensorrt
    import tensorrt.plugin
    _register(tensorrt, tensorrt.plugin)
    return True


def trt_entry_ptx(ptx: str, kernel_name: str) -> str:
    """The kernel's PTX with its entry parameters in TensorRT's launch order and the unused
    trailing ones (Triton's scratch pointers) dropped."""
    entry = re.search(rf"\.entry {re.escape(kernel_name)}\((.*?)\n\)", ptx, re.S)
    params = [line.strip().rstrip(",") for line in entry.group(1).strip().splitlines()]
    if len(params) < len(KERNEL_PARAMS):
        raise ValueError(f"{kernel_name} has {len(params)} parameters, expected at least {len(KERNEL_PARAMS)}")
    for extra in params[len(KERNEL_PARAMS):]:
        if ptx.count(extra.split()[-1]) != 1:
            raise ValueError(f"{kernel_name} uses its parameter {extra.split()[-1]}, which TensorRT cannot pass")
    by_name = dict(zip(KERNEL_PARAMS, params))
    declarations = ",\n".join(f"\t{by_name[name]}" for name in TRT_PARAMS)
    return ptx[:entry.start(1)] + "\n" + declarations + ptx[entry.end(1):]


def _arch() -> int:
    """The AOT target for the build GPU: sm_90 PTX on Hopper, else sm_80 PTX (the driver JITs it
    for newer GPUs)."""
    import torch
    return 90 if torch.cuda.get_device_capability() == (9, 0) else 80


@functools.cache
def _compiled(arch, dtype, head_dim: int, mode: str, scale: float):
    from .aot import compile_kernel
    return compile_kernel(arch, dtype, head_dim, mode, scale)


def _register(trt, trtp):
    import torch
    torch_dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.bfloat16: torch.bfloat16}

    @trtp.register(PLUGIN_ID)
    def describe(q: trtp.TensorDesc, k: trtp.TensorDesc, v: trtp.TensorDesc, beta: trtp.TensorDesc,
                 rho: trtp.TensorDesc, scale: float, mode: str) -> trtp.TensorDesc:
        return trtp.from_shape_expr(q.shape_expr, dtype=trt.float32)                  # o (B, H, Lq, D)

    @trtp.autotune(PLUGIN_ID)
    def autotune(q, k, v, beta, rho, outputs):
        return [trtp.AutoTuneCombination(f"{t}, {t}, {t}, FP32, FP32, FP32") for t in ("FP32", "FP16", "BF16")]

    @trtp.aot_impl(PLUGIN_ID)
    def aot_impl(q, k, v, beta, rho, scale: float, mode: str, outputs):
        kernel = _compiled(_arch(), torch_dtypes[q.dtype], q.shape_expr[3].constant_value(), mode, scale)
        B, H, Lq = q.shape_expr[0], q.shape_expr[1], q.shape_expr[2]
        Lk = k.shape_expr[2]
        launch = trtp.KernelLaunchParams()
        launch.grid_x = B * H
        launch.grid_y = trtp.cdiv(Lq, kernel.block_m)
        launch.block_x = kernel.num_warps * 32
        launch.shared_mem = kernel.shared_bytes
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(e) for e in (H, Lq - 1, Lk - Lq)])   # H, n, P
        return kernel.name, trt_entry_ptx(kernel.ptx, kernel.name), launch, extra
