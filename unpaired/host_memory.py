"""Keep freed CPU tensor memory inside the process for the next training step (Linux, glibc).

PyTorch takes CPU tensor memory from ``malloc``. glibc serves a large request (above its mmap threshold,
128 KiB at start, adapting up to 32 MiB) from a fresh ``mmap`` and gives it back to the kernel on ``free``,
and trims the top of its heap once enough of it is free. A training step frees its whole graph and the next
step allocates the same sizes again, so every step touches fresh pages, which the kernel faults in and
zeroes one 4 KiB page at a time: 30 000-50 000 minor page faults per AttentionGAN step at 64 px, batch 4,
and over 100 000 at 256 px (measured with ``getrusage``, docs/benchmarks.md). Switching glibc's mmap use
and heap trimming off lets the next step reuse the freed blocks, as PyTorch's caching allocator does on
CUDA. The cost: the process keeps its peak heap until it exits.

The trainer applies it on the CPU unless ``train.keep_cpu_memory=false``; ``Translator`` unless
``keep_cpu_memory=False``. It is a setting of the whole process and cannot be undone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger("unpaired")

# mallopt parameters, <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2 ** 31 - 1

_applied = False


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve every request from its heap and never hand freed memory back to the
    kernel. Returns whether the setting is in force (False on other C libraries and systems); once per
    process, later calls return the first answer."""
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    except (OSError, AttributeError):
        return False
    _applied = ok
    if ok:
        log.info("CPU memory: freed tensor memory is kept in the process for reuse (train.keep_cpu_memory)")
    return ok
