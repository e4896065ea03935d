"""The device line shown in status bars, reports and saved results."""

import pytest
import torch

from desktop.device import describe_device


@pytest.mark.parametrize("threads, words", [(1, "1 thread)"), (2, "2 threads)")])
def test_cpu_line_counts_threads_in_good_english(threads, words):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        line = describe_device(torch.device("cpu"))
    finally:
        torch.set_num_threads(before)
    assert line.startswith("CPU") and line.endswith(words)
