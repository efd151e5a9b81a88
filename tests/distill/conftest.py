import pytest


@pytest.fixture(autouse=True, scope="module")
def _single_thread(one_torch_thread):
    """Every distill test runs with one torch thread (tests/conftest.py says why)."""
