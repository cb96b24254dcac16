"""Fixtures for the evaluation tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """The eval tests use tiny tensors: one intra-op thread avoids OpenMP spin-wait stalls on a busy
    2-core machine (50x slower steps were seen). Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
