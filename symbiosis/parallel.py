"""How many CPUs this process may use (for the thread pools of the candidates and exchange stages)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the system has one (a container limited to 2 of
    64 cores gets 2), else the CPU count, at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)
