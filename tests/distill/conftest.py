import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The tiny model gains nothing from intra-op threads, and with `pytest -n 2` on two cores the
    OpenMP threads of both workers oversubscribe the CPU and slow these tests down five times."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
