"""`export --quantize`: int8 dynamic quantisation of the step graph's linear layers for ONNX Runtime on CPU.

Weights become int8 per output channel, activations are quantised per call (DynamicQuantizeLinear,
MatMulInteger). Left in float32: the head (the logits decide tokens), every activation-by-activation
product (attention, the amplification op's function body) and the other graphs (the condition runs
once per batch, the VQ update and decoder are convolutions and resamplings). Measured on the d16
shape in benchmarks/results/precision-*.md.
"""
import tempfile
from pathlib import Path

import onnx

from . import onnx_files

SCHEME = "int8-dynamic"
LINEAR_OPS = ("MatMul", "Gemm")


def head_nodes(model: onnx.ModelProto, output: str = "logits") -> list:
    """Names of the linear nodes nearest to `output`, walking back through the graph: the head."""
    producer = {o: n for n in model.graph.node for o in n.output}
    found, frontier, seen = [], [output], set()
    while frontier:
        node = producer.get(frontier.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in LINEAR_OPS:
            found.append(node.name)
            continue
        frontier.extend(node.input)
    return found


def quantize_step(path: Path):
    """Replace the step graph at `path` (and its external data) by its int8 dynamic quantisation."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(path), load_external_data=False)
    exclude = head_nodes(model)
    data = path.with_name(path.name + ".data")
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        out = Path(scratch) / path.name
        quantize_dynamic(path, out, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=list(LINEAR_OPS),
                         nodes_to_exclude=exclude, extra_options={"MatMulConstBOnly": True})
        quantized = onnx.load(str(out))
        path.unlink()
        data.unlink(missing_ok=True)
        onnx_files.save(quantized, path)
