import pytest
import torch

from hieramp.model.presets import random_model


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model():
    """The seeded random-init `tiny` preset (class tokens at every scale)."""
    return random_model("tiny")


@pytest.fixture(scope="session")
def tiny_plain_model():
    return random_model("tiny-plain")
