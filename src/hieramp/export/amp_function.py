"""The `hieramp::TopKBiasAttention` node and its ONNX local function (docs/design.md, "The amplification op").

The function body uses standard ONNX ops only, so any runtime runs it after inlining. A model
carries one body, written for the export's mode: ONNX has no way to branch on a string
attribute without string tensors, which TensorRT does not support. The node still states its
`mode`, and a model never mixes modes (the exporter writes every node with the same one).

The top-k indicator follows the definition literally: a_j = 1 iff fewer than k_sel positions
rank before j (m_i > m_j, or m_i == m_j and i < j), counted over an (n, n) comparison, so ties
go to the lower index on every runtime, whatever its TopK does with them.
"""
import math

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..model.amp_op import MODES, k_sel

DOMAIN = "hieramp"
OP_NAME = "TopKBiasAttention"
OP_VERSION = 1
INDICATOR = "topk_indicator"   # the indicator a inside the function body (hieramp compare reads it)


def graph_rho(rho: float, n: int) -> np.float32:
    """The float32 rho to feed a graph so that its float32 floor(rho * n) equals the reference's
    float64 k_sel. float32(rho) already does, except for a few (rho, n), e.g. (0.53, 100), where
    the two roundings straddle an integer; there it moves by one or two float32 steps."""
    target = k_sel(rho, n)
    candidate = np.float32(rho)
    direction = np.float32(np.inf if max(1, math.floor(candidate * np.float32(n))) < target else -np.inf)
    for _ in range(4):
        if max(1, int(np.floor(candidate * np.float32(n)))) == target:
            return candidate
        candidate = np.nextafter(candidate, direction, dtype=np.float32)
    raise AssertionError(f"no float32 rho near {rho} gives k_sel {target} for n = {n}")


class _Body:
    """Collects the nodes of a function body; each call adds one node and returns its output name."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes = []

    def __call__(self, op, *inputs, name=None, **attrs):
        out = name or f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def const(self, value, dtype=np.int64):
        return self("Constant", value=onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype)))

    def attr_float(self, attribute: str):
        """A Constant whose value is the function's float attribute `attribute`."""
        node = helper.make_node("Constant", [], [f"t{len(self.nodes)}"])
        node.attribute.append(helper.make_attribute_ref("value_float", TensorProto.FLOAT))
        node.attribute[-1].ref_attr_name = attribute
        self.nodes.append(node)
        return node.output[0]

    def reduce_mean(self, x, axes):
        if self.opset >= 18:
            return self("ReduceMean", x, self.const(axes), keepdims=0)
        return self("ReduceMean", x, axes=list(axes), keepdims=0)


def function_proto(mode: str, opset: int) -> onnx.FunctionProto:
    """TopKBiasAttention(q, k, v, beta, rho) -> o, attributes scale (float) and mode (string).

    Shapes as in docs/design.md: q (B, H, Lq, D), k and v (B, H, P + Lq, D), beta and rho float32
    scalars; o (B, H, Lq, D) float32. Computed in float32 whatever the input type.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    f = _Body(opset)
    F32 = TensorProto.FLOAT
    q, k, v = (f("Cast", x, to=F32) for x in ("q", "k", "v"))
    beta, rho = f("Cast", "beta", to=F32), f("Cast", "rho", to=F32)
    zero, one = f.const(0), f.const(1)                                               # scalars
    axis0, axis1 = f.const([0]), f.const([1])
    Lq = f("Squeeze", f("Shape", q, start=2, end=3))                    # scalars
    Lk = f("Squeeze", f("Shape", k, start=2, end=3))
    n = f("Sub", Lq, one)
    P = f("Sub", Lk, Lq)

    # 1-2. Scaled logits; the class row (last) does not see the P cached keys.
    logits = f("Mul", f("MatMul", q, f("Transpose", k, perm=[0, 1, 3, 2])), f.attr_float("scale"))  # (B, H, Lq, Lk)
    class_row = f("Unsqueeze", f("Equal", f("Range", zero, Lq, one), n), axis1)        # (Lq, 1)
    cached_key = f("Less", f("Range", zero, Lk, one), P)                             # (Lk,)
    logits = f("Where", f("And", class_row, cached_key), f.const(-np.inf, np.float32), logits)

    # 3. Saliency: mean over heads of the class row's softmax over the scale's n spatial keys.
    starts = f("Concat", f("Unsqueeze", n, axis0), f("Unsqueeze", P, axis0), axis=0)
    ends = f("Concat", f("Unsqueeze", Lq, axis0), f("Unsqueeze", f("Add", P, n), axis0), axis=0)
    class_logits = f("Slice", logits, starts, ends, f.const([2, 3]))                 # (B, H, 1, n)
    saliency = f.reduce_mean(f("Softmax", class_logits, axis=-1), [1, 2])            # (B, n)

    # 4. Indicator: rank_j = #positions before j; a_j = rank_j < k_sel.
    m_i = f("Unsqueeze", saliency, f.const([2]))                                      # (B, n, 1)
    m_j = f("Unsqueeze", saliency, axis1)                                              # (B, 1, n)
    index = f("Range", zero, n, one)                                                  # (n,)
    lower = f("Less", f("Unsqueeze", index, axis1), f("Unsqueeze", index, axis0))    # (n, n): i < j
    before = f("Or", f("Greater", m_i, m_j), f("And", f("Equal", m_i, m_j), lower))  # (B, n, n)
    rank = f("ReduceSum", f("Cast", before, to=TensorProto.INT64), axis1, keepdims=0)  # (B, n)
    k_sel_ = f("Max", f("Cast", f("Floor", f("Mul", rho, f("Cast", n, to=F32))), to=TensorProto.INT64), one)
    a = f("Cast", f("Less", rank, k_sel_), to=F32, name=INDICATOR)            # (B, n)

    # a over all P + Lq keys: zero at the cached keys and at the class key.
    pads = f("Concat", axis0, f("Unsqueeze", P, axis0), f.const([0, 1]), axis=0)
    a_keys = f("Unsqueeze", f("Pad", a, pads), f.const([1, 2]))                       # (B, 1, 1, Lk)

    # 5-6.
    if mode == "logit":
        weights = f("Softmax", f("Add", logits, f("Mul", beta, a_keys)), axis=-1)
    else:
        factor = f("Add", f.const(1.0, np.float32), f("Mul", f("Sub", beta, f.const(1.0, np.float32)), a_keys))
        weights = f("Mul", f("Softmax", logits, axis=-1), factor)
    f("MatMul", weights, v, name="o")                                                 # (B, H, Lq, D)
    return helper.make_function(
        DOMAIN, OP_NAME, ["q", "k", "v", "beta", "rho"], ["o"], f.nodes,
        opset_imports=[helper.make_opsetid("", opset)], attributes=["scale", "mode"],
    )


def make_node(inputs, output: str, scale: float, mode: str, name: str) -> onnx.NodeProto:
    return helper.make_node(OP_NAME, list(inputs), [output], name=name, domain=DOMAIN, scale=float(scale), mode=mode)


def standalone_model(mode: str, opset: int, scale: float, with_function: bool = True, dtype=TensorProto.FLOAT) -> onnx.ModelProto:
    """One TopKBiasAttention node as a model with dynamic shapes, for checking the op on its own."""
    def tensor(name, elem, shape):
        return helper.make_tensor_value_info(name, elem, shape)

    graph = helper.make_graph(
        [make_node(["q", "k", "v", "beta", "rho"], "o", scale, mode, "amp")], "topk_bias_attention",
        [tensor("q", dtype, ["B", "H", "Lq", "D"]), tensor("k", dtype, ["B", "H", "Lk", "D"]),
         tensor("v", dtype, ["B", "H", "Lk", "D"]), tensor("beta", TensorProto.FLOAT, []), tensor("rho", TensorProto.FLOAT, [])],
        [tensor("o", TensorProto.FLOAT, ["B", "H", "Lq", "D"])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, OP_VERSION)],
        functions=[function_proto(mode, opset)] if with_function else [],
    )
