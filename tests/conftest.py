import os

import pytest
import torch

from hieramp.model.presets import random_model

# Triton kernels run on CPU tensors through its interpreter when there is no GPU; the variable
# must be set before anything imports triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


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
