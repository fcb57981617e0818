"""Keep freed CPU tensor memory inside the process for the next call (Linux, glibc).

PyTorch takes CPU tensor memory from ``malloc``. glibc serves a request above its mmap threshold (128 KiB at
start, adapting up to 32 MiB) from a fresh ``mmap`` and gives it back to the kernel on ``free``, and trims
the top of its heap once enough of it is free. Translating a batch allocates activations far above 32 MiB
(8 images of 256 px: 134 MB for one 64-channel map), frees them, and the next batch maps and faults them in
again, one zeroed 4 KiB page at a time: 1.9 million minor page faults per batch of 8 for AttentionGAN at
256 px, and batch 8 ran slower than one image at a time. With glibc's mmap use and trimming off, the freed
blocks are reused, as PyTorch's caching allocator does on CUDA: 0 faults after the first batch, 1.28x the
batched images/s (docs/benchmarks.md). The cost: the process keeps its peak heap until it exits.

``Translator`` applies it on the CPU unless ``keep_cpu_memory=False``. Training does not: there glibc's
adaptive threshold already settles to (almost) no faults after the first steps (measured at 64-256 px).
It is a setting of the whole process and cannot be undone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger("unpaired")

# mallopt parameters, <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2 ** 31 - 1

_applied = False


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve every request from its heap and never hand freed memory back to the
    kernel. Returns whether the setting is in force (False on other C libraries and systems); once it is,
    later calls return at once."""
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library the process already runs on (no ldconfig look-up)
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    except (OSError, AttributeError):
        return False
    _applied = ok
    if ok:
        log.info("CPU memory: freed tensor memory is kept in the process for reuse (unpaired.host_memory)")
    return ok


def release_freed_memory() -> bool:
    """Hand the free memory at the top and in the middle of glibc's heap back to the kernel now
    (``malloc_trim(0)``; also after :func:`keep_freed_memory`): the demo calls it after each request, so one
    large image does not keep the server's memory high. False where there is no glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    import gc

    gc.collect()
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc/self/statm; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0
