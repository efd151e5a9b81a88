"""Ahead-of-time compilation of the TopKBiasAttention kernel to PTX (and cubin), without a GPU.

The TensorRT plugin (`trt_plugin`) hands TensorRT `CompiledKernel.ptx`, with its entry parameters
reordered to TensorRT's launch order by `trt_plugin.trt_entry_ptx`, and launches
`CompiledKernel.name` with grid (B * H, cdiv(n + 1, block_m)), `num_warps * 32` threads and
`shared_bytes` of dynamic shared memory. The cubin is what ptxas makes of that PTX: the tests
check it, and its register and spill counts are reported here. Kernel parameters, in the
kernel's order: q, k, v (dtype), o (float32), beta, rho (float32 device scalars), H, n, P
(int32), then Triton's two scratch pointers (unused: both scratch sizes are 0, and
`trt_entry_ptx` drops them). Requires n <= n_max and 16-byte aligned q, k, v, o.
"""
import os
import pickle
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas
from triton.compiler import ASTSource

from hieramp.model.amp_op import MODES
from hieramp.plugins.triton_attention import DTYPES, HEAD_DIMS, N_MAX, kernel_config, topk_bias_attention_kernel

ARCHS = (80, 90)
_TRITON_DTYPE = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass(frozen=True)
class CompiledKernel:
    name: str
    arch: int
    dtype: torch.dtype
    head_dim: int
    mode: str
    scale: float
    block_m: int
    n_max: int
    num_warps: int
    cubin: bytes
    ptx: str
    n_regs: int          # registers per thread
    shared_bytes: int    # dynamic shared memory per block
    spill_bytes: int     # bytes of spill stores per thread (0 when nothing spills)
    stack_bytes: int     # local memory per thread (stack frame, spills included)


def compile_kernel(arch: int, dtype: torch.dtype, head_dim: int, mode: str = "logit",
                   scale: float | None = None, n_max: int = N_MAX) -> CompiledKernel:
    """Compile for sm_`arch` (80 or 90); `scale` defaults to head_dim ** -0.5."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype}")
    if head_dim not in HEAD_DIMS:
        raise ValueError(f"head_dim must be one of {HEAD_DIMS}, got {head_dim}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    scale = head_dim ** -0.5 if scale is None else float(scale)
    if not isinstance(topk_bias_attention_kernel, triton.runtime.JITFunction):
        return _compile_in_subprocess(arch, dtype, head_dim, mode, scale, n_max)
    config = kernel_config(n_max, head_dim, dtype)
    ty = _TRITON_DTYPE[dtype]
    signature = dict(q_ptr=f"*{ty}", k_ptr=f"*{ty}", v_ptr=f"*{ty}", o_ptr="*fp32", beta_ptr="*fp32",
                     rho_ptr="*fp32", H="i32", n="i32", P="i32")
    constants = dict(SCALE=scale, MODE=mode, HEAD_DIM=head_dim, BLOCK_M=config["BLOCK_M"],
                     BLOCK_N=config["BLOCK_N"], N_MAX=config["N_MAX"])
    signature.update(dict.fromkeys(constants, "constexpr"))
    aligned = {(i, ): [["tt.divisibility", 16]] for i in range(4)}  # q, k, v, o
    kernel = triton.compile(
        ASTSource(topk_bias_attention_kernel, signature, constants, aligned), target=GPUTarget("cuda", arch, 32),
        options=dict(num_warps=config["num_warps"], num_stages=config["num_stages"], enable_fp_fusion=True))
    ptx = kernel.asm["ptx"]
    n_regs, spill_bytes, stack_bytes = _ptxas_usage(ptx, arch)
    return CompiledKernel(
        name=kernel.metadata.name, arch=arch, dtype=dtype, head_dim=head_dim, mode=mode, scale=scale,
        block_m=config["BLOCK_M"], n_max=config["N_MAX"], num_warps=config["num_warps"],
        cubin=kernel.asm["cubin"], ptx=ptx, n_regs=n_regs, shared_bytes=kernel.metadata.shared,
        spill_bytes=spill_bytes, stack_bytes=stack_bytes)


def _compile_in_subprocess(*args) -> CompiledKernel:
    """Under TRITON_INTERPRET=1 triton.language itself is interpreted: compile in a clean process."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = ("import pickle, sys; from hieramp.plugins.aot import compile_kernel; "
            "sys.stdout.buffer.write(pickle.dumps(compile_kernel(*pickle.load(sys.stdin.buffer))))")
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(args), env=env, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"AOT compilation failed:\n{done.stderr.decode()}")
    return pickle.loads(done.stdout)


def _ptxas_usage(ptx: str, arch: int) -> tuple[int, int, int]:
    """(registers, spill store bytes, stack frame bytes) from the ptxas that Triton used, same flags."""
    target = re.search(r"^\.target\s+(\w+)", ptx, re.M).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernel.ptx"
        src.write_text(ptx)
        log = subprocess.run(
            [get_ptxas(arch).path, "-lineinfo", "-v", "--regAllocOptLevel=2", f"--gpu-name={target}", str(src),
             "-o", str(Path(tmp) / "kernel.cubin")], check=True, capture_output=True, text=True).stderr
    regs = int(re.search(r"Used (\d+) registers", log).group(1))
    stack, spills = (int(x) for x in re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores", log).groups())
    return regs, spills, stack
