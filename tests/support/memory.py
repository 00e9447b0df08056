"""A process's own memory, read from ``/proc/self/status`` (Linux).

Not ``getrusage().ru_maxrss``: Linux carries the parent's peak across ``fork``/``exec`` into
the child's ``ru_maxrss``, so a worker spawned by a pytest process that has run the whole
suite reports pytest's peak (this is how a chaos test once "used" 151 MB). ``VmHWM`` is the
high-water mark of this process's own address space.
"""

from __future__ import annotations

from pathlib import Path


def _status_kb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_rss_mb() -> float:
    """The peak resident memory of this process since its exec, in MiB."""
    return _status_kb("VmHWM") / 1024


def rss_mb() -> float:
    """The resident memory of this process now, in MiB."""
    return _status_kb("VmRSS") / 1024
