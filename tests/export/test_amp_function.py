"""The TopKBiasAttention function body on its own, against the reference op (issue item 4)."""
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from hieramp import topk_bias_attention
from hieramp.export.amp_function import DOMAIN, OP_NAME, graph_rho, standalone_model
from hieramp.model.amp_op import k_sel

VAR_SCALES = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
CASES = [("logit", 5.0, 0.5), ("weight", 3.0, 0.3)]


def op_inputs(pn, B=2, H=3, D=8, seed=0):
    n = pn * pn
    P = sum(p * p for p in VAR_SCALES if p < pn)
    g = torch.Generator().manual_seed(seed * 1000 + pn)
    q = torch.randn(B, H, n + 1, D, generator=g)
    k = torch.randn(B, H, P + n + 1, D, generator=g)
    v = torch.randn(B, H, P + n + 1, D, generator=g)
    return q, k, v


def feeds(q, k, v, beta, rho):
    n = q.shape[2] - 1
    return {"q": q.numpy(), "k": k.numpy(), "v": v.numpy(), "beta": np.array(beta, np.float32),
            "rho": np.array(graph_rho(rho, n), np.float32)}


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request):
    mode, beta, rho = request.param
    model = standalone_model(mode, opset=18, scale=0.7)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return mode, beta, rho, model, session


@pytest.mark.parametrize("pn", VAR_SCALES)
def test_body_equals_reference_on_every_var_scale(case, pn):
    mode, beta, rho, model, session = case
    q, k, v = op_inputs(pn)
    expected = topk_bias_attention(q, k, v, beta, rho, 0.7, mode).numpy()
    inputs = feeds(q, k, v, beta, rho)
    np.testing.assert_allclose(session.run(None, inputs)[0], expected, atol=2e-6, rtol=0)
    if pn <= 10:   # the Python reference evaluator is slow on the largest scales
        np.testing.assert_allclose(ReferenceEvaluator(model).run(None, inputs)[0], expected, atol=2e-6, rtol=0)


@pytest.mark.parametrize("mode,beta", [("logit", 0.0), ("weight", 1.0)])
def test_neutral_beta_is_scale_restricted_attention(mode, beta):
    session = ort.InferenceSession(standalone_model(mode, 18, 1.0).SerializeToString(), providers=["CPUExecutionProvider"])
    q, k, v = op_inputs(4)
    P = k.shape[2] - q.shape[2]
    logits = q @ k.transpose(-1, -2)
    logits[..., -1, :P] = float("-inf")
    expected = (torch.softmax(logits, -1) @ v).numpy()
    np.testing.assert_allclose(session.run(None, feeds(q, k, v, beta, 0.5))[0], expected, atol=2e-6, rtol=0)


def test_ties_go_to_the_lower_index():
    # Identical spatial keys give a uniform saliency: the amplified set must be positions 0..k_sel-1.
    B, H, n, P, D = 1, 2, 8, 5, 4
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(B, H, n + 1, D, generator=g), torch.randn(B, H, P + n + 1, D, generator=g)
    k[:, :, P:P + n] = k[:, :, P:P + 1]
    v = torch.zeros(B, H, P + n + 1, D)
    v[:, :, P:P + n, 0] = torch.arange(n, dtype=torch.float32)
    session = ort.InferenceSession(standalone_model("logit", 18, 1.0).SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds(q, k, v, 50.0, 0.25))[0]
    np.testing.assert_allclose(got, topk_bias_attention(q, k, v, 50.0, 0.25, 1.0).numpy(), atol=1e-5, rtol=0)
    assert np.all(got[..., 0] < 0.5 + 1e-3)


@pytest.mark.parametrize("opset", [17, 18, 20])
def test_function_and_plugin_forms_pass_the_full_checker(opset):
    for with_function in (True, False):
        model = standalone_model("logit", opset, 1.0, with_function=with_function)
        onnx.checker.check_model(model, full_check=True)
        assert [(n.domain, n.op_type) for n in model.graph.node] == [(DOMAIN, OP_NAME)]
        assert len(model.functions) == int(with_function)


def test_scale_attribute_reaches_the_body():
    q, k, v = op_inputs(3)
    for scale in (0.25, 2.0):
        session = ort.InferenceSession(standalone_model("logit", 18, scale).SerializeToString(), providers=["CPUExecutionProvider"])
        expected = topk_bias_attention(q, k, v, 5.0, 0.5, scale).numpy()
        np.testing.assert_allclose(session.run(None, feeds(q, k, v, 5.0, 0.5))[0], expected, atol=2e-6, rtol=0)


def test_graph_rho_reproduces_the_reference_k_sel():
    """float32 rho * n in the graph gives the reference's float64 k_sel for every rho in 0.001 steps."""
    ns = [pn * pn for pn in VAR_SCALES]
    for i in range(1, 1001):
        rho = i / 1000
        for n in ns:
            r = graph_rho(rho, n)
            assert r.dtype == np.float32 and abs(float(r) - rho) < 1e-6
            assert max(1, int(np.floor(r * np.float32(n)))) == k_sel(rho, n) == max(1, math.floor(rho * n))
    assert np.float32(0.53) * np.float32(100) < 53 <= graph_rho(0.53, 100) * np.float32(100)
