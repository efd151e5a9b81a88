"""The backend registry and contract: which backends exist, whether they are usable here."""
import pytest
import torch

from hieramp import AmpConfig, Generator, UserError
from hieramp.runtime.backends import BACKENDS, availability, backend_class, cuda_reason, device_for
from hieramp.runtime.backends.base import Backend

STEPS = ("begin", "step", "sample", "update", "decode")


def test_every_registered_backend_implements_the_contract():
    for name, info in BACKENDS.items():
        cls = backend_class(name)
        assert issubclass(cls, Backend) and cls.name == name
        assert all(getattr(cls, step) is not getattr(Backend, step) for step in STEPS), name
    assert [info.artifact for info in BACKENDS.values()] == [None, "export_dir", "engine_dir"]


def test_availability_says_why_not():
    assert availability("torch", "cpu") is None and availability("onnxruntime", "cpu") is None
    assert availability("nope", "cpu").startswith("unknown backend 'nope'")
    assert "cpu or cuda" in availability("onnxruntime", "meta")
    assert availability("tensorrt", "cpu").startswith("the tensorrt backend runs on a CUDA GPU")
    assert device_for("tensorrt", "cpu") == "cuda" and device_for("onnxruntime", "cpu") == "cpu"
    if not torch.cuda.is_available():
        assert availability("torch", "cuda") == cuda_reason() is not None
    with pytest.raises(UserError, match="unknown backend"):
        backend_class("nope")


def test_optional_capabilities_have_defaults(tiny_model):
    backend = Generator(tiny_model).backend
    assert backend.artifact_id is None and backend.manifest is None and backend.device_memory_bytes() == 0
    assert Backend.record_amp_sets(backend) is False and Backend.amp_indicators == ()


def test_generator_check_refuses_before_any_work(tiny_model):
    gen = Generator(tiny_model)
    gen.check(4, AmpConfig(layers=(1,)))
    gen.check(4, None)
    with pytest.raises(UserError, match="blocks"):
        gen.check(4, AmpConfig(layers=(99,)))
