"""The CPUs the thread pools may use follow the process's affinity, not the machine's core count."""

from __future__ import annotations

import os

import pytest

from symbiosis.parallel import usable_cpus


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_usable_cpus_follows_the_affinity_mask():
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        assert usable_cpus() == 1
    finally:
        os.sched_setaffinity(0, before)
    assert usable_cpus() == len(before) >= 1
