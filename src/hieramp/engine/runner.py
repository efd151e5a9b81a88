"""Running serialized engines on torch CUDA tensors: execution contexts on caller-owned scratch
memory, tensors bound by name, and CUDA-graph capture of a piece of work.

Needs a CUDA GPU; nothing here runs on a CPU-only machine.
"""
from pathlib import Path

import torch

from ..errors import UserError

ALIGNMENT = 256     # bytes; TensorRT wants I/O addresses aligned like this


def torch_dtype(trt, dtype):
    return {trt.float32: torch.float32, trt.float16: torch.float16, trt.bfloat16: torch.bfloat16,
            trt.int64: torch.int64, trt.int32: torch.int32, trt.bool: torch.bool}[dtype]


def aligned_rows(batch: int, shape: tuple, dtype, device) -> torch.Tensor:
    """A (batch, *shape) tensor whose rows are contiguous and start at ALIGNMENT-byte boundaries,
    so that each row can be bound to a batch-1 engine on its own."""
    numel = 1
    for d in shape:
        numel *= d
    per_row = -(-numel * dtype.itemsize // ALIGNMENT) * ALIGNMENT // dtype.itemsize
    return torch.zeros(batch, per_row, dtype=dtype, device=device)[:, :numel].unflatten(1, shape)


class Engine:
    """One deserialized engine; contexts use memory the caller provides (one scratch buffer can
    serve every context that runs on the same stream, one after the other)."""

    def __init__(self, tensorrt, runtime, path: Path):
        self.trt = tensorrt.module
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise UserError(f"{tensorrt.name} cannot load {path} on this GPU: rebuild the engines, or pass --rebuild")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == self.trt.TensorIOMode.OUTPUT]

    def scratch_bytes(self, profile: int) -> int:
        return self.engine.get_device_memory_size_for_profile_v2(profile)

    def dtype(self, name: str):
        return torch_dtype(self.trt, self.engine.get_tensor_dtype(name))

    def context(self, profile: int, scratch: torch.Tensor):
        ctx = self.engine.create_execution_context(self.trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        ctx.set_device_memory(scratch.data_ptr(), scratch.numel())
        ctx.set_optimization_profile_async(profile, torch.cuda.current_stream().cuda_stream)
        return ctx

    def bind(self, ctx, inputs: dict, outputs: dict = None) -> dict:
        """Set every input's shape and address, then every output's address; outputs not given
        are allocated with the shapes TensorRT infers. Shape-tensor inputs are CPU tensors."""
        for name in self.inputs:
            tensor = inputs[name]
            ctx.set_input_shape(name, tuple(tensor.shape))
            ctx.set_tensor_address(name, tensor.data_ptr())
        outputs = dict(outputs or {})
        for name in self.outputs:
            if name not in outputs:
                shape = tuple(ctx.get_tensor_shape(name))
                outputs[name] = torch.empty(shape, dtype=self.dtype(name), device="cuda")
            ctx.set_tensor_address(name, outputs[name].data_ptr())
        return outputs

    def run(self, ctx):
        if not ctx.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError(f"TensorRT could not enqueue {self.engine.name}")


class CapturedWork:
    """`work()` runs eagerly on its first call (TensorRT needs one run before capture) and is
    captured as a CUDA graph right after; later calls replay the graph. Work must only launch
    kernels on the current stream, into buffers that outlive it."""

    def __init__(self, work, capture: bool = True):
        self.work, self.capture = work, capture
        self.graph = None

    def __call__(self):
        if self.graph is not None:
            self.graph.replay()
            return
        self.work()
        if self.capture:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.work()
            self.graph = graph
