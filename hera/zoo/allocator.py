"""A steady glibc heap for processes that run models (workers, T1, in-process benchmarks).

Why: with glibc's defaults, a tensor of more than 128 KiB is served by its own ``mmap`` and returned to the
kernel with ``munmap`` when freed, and the heap top is trimmed whenever 128 KiB are free there. The mmap
threshold then moves by itself (it rises to the size of the largest mmapped chunk freed), so whether a
model's large temporaries come from the heap (pages already mapped) or from fresh zero-filled pages (one page
fault per 4 KiB, every sub-batch) depends on the allocation history of the process. DIN's attention
temporaries sit right on that edge: on the 2-core VM of the reference run its 64-item sub-batch took either
~5 ms or ~12 ms, switching within one process from one second to the next (``hera bench allocator``). That
two-speed worker set DIN's SLA and its QPS* apart from its own profile by 2x.

:func:`steady_heap` fixes the three knobs with ``mallopt`` (which also turns off the moving threshold): large
allocations come from the heap up to :data:`MMAP_THRESHOLD_BYTES`, freed memory stays mapped up to
:data:`TRIM_THRESHOLD_BYTES`, and the heap grows in steps of :data:`TOP_PAD_BYTES`. The cost is memory that
stays mapped: at most a few tens of MiB per worker. ``HERA_MALLOC=default`` keeps glibc's defaults (for the
benchmark's comparison and for anyone who wants the old behaviour). Not glibc (musl, macOS): nothing to do,
and the returned description says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 32 << 20   # glibc's largest accepted value (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD_BYTES = 1 << 30
TOP_PAD_BYTES = 64 << 20
MODES = ("steady", "default")
ENV = "HERA_MALLOC"


def requested_mode() -> str:
    """The mode asked for by ``HERA_MALLOC`` (``steady`` unless set); ValueError for anything else."""
    mode = os.environ.get(ENV, "steady").strip() or "steady"
    if mode not in MODES:
        raise ValueError(f"{ENV}={mode!r} is not one of {', '.join(MODES)}")
    return mode


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None
    return libc


def steady_heap(mode: str | None = None) -> str:
    """Apply ``mode`` (default: :func:`requested_mode`) to this process's glibc heap; return a one-line
    description of what is in effect (recorded with the worker's facts)."""
    mode = mode or requested_mode()
    if mode not in MODES:
        raise ValueError(f"allocator mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "default":
        return "glibc defaults (HERA_MALLOC=default)"
    libc = _libc()
    if libc is None:
        return "unchanged: not glibc"
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                (M_TOP_PAD, TOP_PAD_BYTES))
    failed = [str(param) for param, value in settings if libc.mallopt(param, value) != 1]
    if failed:
        return f"glibc mallopt refused parameter(s) {', '.join(failed)}"
    return (f"glibc steady heap: mmap_threshold {MMAP_THRESHOLD_BYTES >> 20} MiB, "
            f"trim_threshold {TRIM_THRESHOLD_BYTES >> 20} MiB, top_pad {TOP_PAD_BYTES >> 20} MiB")
