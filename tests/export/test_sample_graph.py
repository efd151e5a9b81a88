import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hieramp.export.sample_graph import TOPK_LIMIT, candidates, sample_model
from hieramp.model.sampling import sample_tokens

V = 4096


@pytest.fixture(scope="module")
def session():
    model = sample_model(V, opset=18)
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def draw(session, logits, noise, top_k, top_p):
    return session.run(None, {"logits": logits.numpy(), "noise": noise.numpy(),
                              "top_k": np.array(candidates(top_k, V), np.int64),
                              "top_p": np.array(top_p, np.float32)})[0]


@pytest.mark.parametrize("top_k,top_p", [(900, 0.95), (0, 1.0), (0, 0.9), (1, 0.5), (V, 0.5), (10, 0.0), (50, 0.3)])
def test_equals_sample_tokens(session, top_k, top_p):
    g = torch.Generator().manual_seed(top_k * 7 + int(top_p * 100))
    logits = torch.randn(3, 40, V, generator=g) * 3                     # (B, n, V)
    noise = torch.rand(3, 40, generator=g)
    got = draw(session, logits, noise, top_k, top_p)
    assert got.dtype == np.int64 and got.shape == (3, 40)
    np.testing.assert_array_equal(got, sample_tokens(logits, noise, top_k, top_p).numpy())


def test_ties_in_the_order_go_to_the_lower_index(session):
    logits = torch.zeros(1, 4, V)
    logits[0, :, 100:110] = 5.0                     # ten equal maxima
    noise = torch.tensor([[0.0, 0.05, 0.55, 0.999]])
    got = draw(session, logits, noise, 10, 1.0)
    np.testing.assert_array_equal(got, sample_tokens(logits, noise, 10, 1.0).numpy())
    assert got.tolist() == [[100, 100, 105, 109]]


def test_candidates():
    assert candidates(900, V) == 900
    assert candidates(0, V) == candidates(V, V) == candidates(10 ** 6, V) == V
    assert candidates(0, V, limit=TOPK_LIMIT) == 3840
    assert candidates(900, V, limit=TOPK_LIMIT) == 900
