import numpy as np
import pytest

from hieramp.bench.memory import CLEAR_REFS, PeakMemory

MB = 2 ** 20


@pytest.mark.skipif(not CLEAR_REFS.exists(), reason="needs Linux /proc/self/clear_refs to reset the RSS peak")
def test_rss_peak_rises_with_an_allocation_and_resets():
    memory = PeakMemory("cpu")
    assert memory.kind == "process RSS"
    memory.reset()
    before = memory.peak_mb()
    block = np.ones(300 * MB, dtype=np.uint8)            # touched pages: resident
    during = memory.peak_mb()
    assert during - before >= 250
    del block
    memory.reset()
    assert memory.peak_mb() < during - 250
