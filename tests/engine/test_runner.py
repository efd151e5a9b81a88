"""Buffers for batch-1 engines: each row starts ALIGNMENT bytes past an aligned one (CUDA
allocations start aligned; CPU ones, used here, need not)."""
import torch

from hieramp.engine.runner import ALIGNMENT, aligned_rows


def test_rows_are_contiguous_and_aligned():
    for dtype, shape in ((torch.int64, (1,)), (torch.float16, (2, 3, 5)), (torch.float32, (3, 8, 8))):
        rows = aligned_rows(4, shape, dtype, "cpu")
        assert rows.shape == (4, *shape) and rows.dtype == dtype
        for i in range(4):
            assert rows[i].is_contiguous() and (rows[i].data_ptr() - rows.data_ptr()) % ALIGNMENT == 0
        rows.copy_(torch.arange(rows.numel()).view(rows.shape))
        assert torch.equal(rows.reshape(4, -1)[:, 0], torch.arange(4) * rows[0].numel())
