import pytest

from hieramp.model.presets import random_model


@pytest.fixture(scope="session")
def tiny_model():
    """The seeded random-init `tiny` preset (class tokens at every scale)."""
    return random_model("tiny")


@pytest.fixture(scope="session")
def tiny_plain_model():
    return random_model("tiny-plain")
