"""CPU memory: a Translator keeps freed tensor memory in the process (unpaired/host_memory.py)."""

import platform
import subprocess
import sys
import textwrap

import pytest

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc malloc only")


@glibc_only
def test_translator_on_cpu_reuses_freed_memory():
    """glibc maps and faults in fresh pages for every 64 MiB tensor; once a CPU Translator exists, the freed pages
    are reused. In a process of its own: the setting is global and cannot be undone."""
    script = textwrap.dedent("""
        import resource, torch
        from unpaired.inference import Translator

        def faults(allocations):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(allocations):
                torch.ones(16 << 20)  # 64 MiB, freed at once
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        faults(1)
        default = faults(5)
        Translator({}, {}, device="cpu")
        faults(20)  # the heap grows to its steady size
        print(default, faults(5))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    default, kept = map(int, out.split())
    assert default > 50_000  # 16 384 pages of 4 KiB each time
    assert kept < 1_000


@glibc_only
def test_translator_can_leave_malloc_alone():
    script = textwrap.dedent("""
        from unpaired import host_memory
        from unpaired.inference import Translator

        Translator({}, {}, device="cpu", keep_cpu_memory=False)
        print(host_memory._applied)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
