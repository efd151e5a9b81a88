"""sample.onnx: top-k / top-p filtering and inverse-CDF drawing, as `model.sampling.sample_tokens`.

Inputs: logits (B, n, V) float32, noise (B, n) float32, top_k int64 scalar K, top_p float32
scalar. Output: ids (B, n) int64.

`top_k` is the number of candidates, 1 <= K <= V; the runtime maps the user's top-k to it
(`candidates`). A sorted TopK returns the K largest logits in the stable descending order of
the reference (ties: lower index first), so the graph never sorts all V logits; top-p then
works inside those K, which gives the reference's distribution because top-p acts on the
top-k-filtered probabilities. TensorRT's TopK takes K <= 3840 (TOPK_LIMIT): its runtime clamps
K there, so top_k = 0 (all) with V = 4096 drops the 256 least likely tokens on TensorRT only.
The one difference from the reference: it keeps every logit equal to the K-th largest, the
graph exactly K, which differs only when those two logits are bitwise equal.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .graphs import BATCH, IDS, LOGITS, N, NOISE, SAMPLE, TOP_K, TOP_P

TOPK_LIMIT = 3840


def candidates(top_k: int, vocab_size: int, limit: int = None) -> int:
    """The graph's K for a user top-k (0 or >= V: all), at most `limit` where the runtime has one."""
    K = vocab_size if top_k <= 0 or top_k >= vocab_size else top_k
    return min(K, limit) if limit else K


def sample_model(vocab_size: int, opset: int) -> onnx.ModelProto:
    nodes, inits = [], []

    def node(op, *inputs, outputs=None, **attrs):
        outputs = outputs or [f"t{len(nodes)}"]
        nodes.append(helper.make_node(op, list(inputs), outputs, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def const(name, value, dtype):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    last = const("last_axis", [-1], np.int64)
    zero, one = const("zero", 0, np.int64), const("one", 1, np.int64)
    K = node("Reshape", TOP_K, last)                                                    # (1,)
    values, order = node("TopK", LOGITS, K, axis=-1, largest=1, sorted=1, outputs=["values", "order"])  # (B, n, K)

    # top-p: drop tokens whose ascending cumulative probability is <= 1 - top_p, keep the largest.
    tail_mass = node("CumSum", node("Softmax", values, axis=-1), const("axis", -1, np.int64), reverse=1)
    not_first = node("Greater", node("Range", zero, node("Squeeze", K), one), zero)     # (K,)
    top_p_on = node("And", node("Greater", TOP_P, const("p_min", 0.0, np.float32)),
                    node("Less", TOP_P, const("p_max", 1.0, np.float32)))
    cut = node("Sub", const("f_one", 1.0, np.float32), TOP_P)
    drop = node("And", node("And", node("LessOrEqual", tail_mass, cut), not_first), top_p_on)
    kept = node("Where", drop, const("neg_inf", -np.inf, np.float32), values)

    # Inverse CDF: the first position whose cumulative probability exceeds noise * total.
    cdf = node("CumSum", node("Softmax", kept, axis=-1), const("axis2", -1, np.int64))  # (B, n, K)
    total = node("Slice", cdf, last, const("end", [np.iinfo(np.int64).max], np.int64), last)  # (B, n, 1)
    threshold = node("Mul", node("Unsqueeze", NOISE, last), total)
    below = node("ReduceSum", node("Cast", node("LessOrEqual", cdf, threshold), to=TensorProto.INT64), last, keepdims=1)
    pos = node("Min", below, node("Sub", K, one))                                        # (B, n, 1)
    node("Squeeze", node("GatherElements", order, pos, axis=-1), last, outputs=[IDS])

    graph = helper.make_graph(nodes, SAMPLE, [
        helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, [BATCH, N, vocab_size]),
        helper.make_tensor_value_info(NOISE, TensorProto.FLOAT, [BATCH, N]),
        helper.make_tensor_value_info(TOP_K, TensorProto.INT64, []),
        helper.make_tensor_value_info(TOP_P, TensorProto.FLOAT, []),
    ], [helper.make_tensor_value_info(IDS, TensorProto.INT64, [BATCH, N])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
