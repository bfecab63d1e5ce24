"""Memory of the calling process, as the kernel counts it for that process alone."""

from __future__ import annotations

import os
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


def current_rss_mib() -> float:
    """Resident memory now, in MiB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def process_memory(mapped_under: str | None = None) -> dict[str, float]:
    """Peak RSS, private (anonymous) memory now and, with ``mapped_under``, the resident / proportional
    (PSS) memory of the files mapped from under that folder: what a memory-mapped cache costs."""
    with open("/proc/self/status", encoding="utf-8") as handle:
        status = {line.split(":")[0]: line.split()[1:] for line in handle}
    result = {"peak_rss_mib": peak_rss_mib(), "rss_anon_mib": int(status["RssAnon"][0]) / 1024}
    if mapped_under:
        rss = pss = 0
        inside = False
        with open("/proc/self/smaps", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                    inside = len(fields) == 6 and fields[5].startswith(mapped_under)
                elif inside and fields[0] == "Rss:":
                    rss += int(fields[1])
                elif inside and fields[0] == "Pss:":
                    pss += int(fields[1])
        result.update(cache_rss_mib=rss / 1024, cache_pss_mib=pss / 1024)
    return result
