"""Fixtures of the estimator tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Count with one intra-op thread: the counts do not depend on it, and
    on a shared CPU several threads make small ops much slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
