"""Writing and checking ONNX files: the I/O spec on the graph, external data, checker, shape inference."""
from pathlib import Path

import onnx
import torch
from onnx import helper

from .graphs import GraphSpec

# ONNX protobufs cannot exceed 2 GB; weights go to one external file well before that.
EXTERNAL_DATA_BYTES = 1_800_000_000

ONNX_TYPES = {torch.float32: onnx.TensorProto.FLOAT, torch.float16: onnx.TensorProto.FLOAT16,
              torch.int64: onnx.TensorProto.INT64}


def apply_spec(model: onnx.ModelProto, spec: GraphSpec):
    """Names, types and shapes of the graph's inputs and outputs exactly as the spec declares."""
    declared = {t.name: t for t in spec.inputs + spec.outputs}
    for value in list(model.graph.input) + list(model.graph.output):
        t = declared[value.name]
        value.CopyFrom(helper.make_tensor_value_info(t.name, ONNX_TYPES[t.dtype], list(t.dims)))


def weight_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def save(model: onnx.ModelProto, path: Path, external_data_bytes: int = EXTERNAL_DATA_BYTES) -> list:
    """Write `path`, with the weights in `path.data` when they exceed the threshold; returns the
    files written."""
    if weight_bytes(model) > external_data_bytes:
        data = path.with_name(path.name + ".data")
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
        return [path, data]
    onnx.save_model(model, str(path))
    return [path]


def check(path: Path):
    """Full checker and strict shape inference (inferred shapes are stored in the file); no ATen
    fallbacks. Works on files with external data."""
    onnx.shape_inference.infer_shapes_path(str(path), str(path), check_type=True, strict_mode=True, data_prop=True)
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path), load_external_data=False)
    aten = sorted({n.op_type for n in model.graph.node if n.domain.startswith("org.pytorch") or n.op_type == "ATen"})
    if aten:
        raise RuntimeError(f"{path.name} has ATen fallback nodes {aten}")
