"""Peak resident memory of the calling process, counted for that process alone."""

from __future__ import annotations

import resource
import sys


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB: Linux's VmHWM.

    Not ``getrusage(...).ru_maxrss`` on Linux: the kernel carries a parent's peak into a child it
    starts with (v)fork + exec, so a fresh measuring process launched by a big parent reports the
    parent's peak (seen: a child that never held more than 14 MiB reported its 813 MiB parent's).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
