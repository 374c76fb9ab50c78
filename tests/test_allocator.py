"""The steady glibc heap of model processes (hera.zoo.allocator) and `hera bench allocator`'s input checks."""
import subprocess
import sys
import types

import pytest

from hera.zoo import allocator

PROBE = r"""
import ctypes, sys
from hera.zoo import allocator
desc = allocator.steady_heap(sys.argv[1])
class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblkhd
p = libc.malloc(4 << 20)
print(libc.mallinfo2().hblkhd - before, desc)
"""


def _mmapped_bytes_of_a_4mib_malloc(mode: str) -> tuple[int, str]:
    cmd = [sys.executable, "-c", PROBE, mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    n, desc = out.strip().split(" ", 1)
    return int(n), desc


@pytest.mark.skipif(allocator._libc() is None, reason="not glibc")
def test_steady_heap_serves_large_blocks_from_the_heap():
    mapped, desc = _mmapped_bytes_of_a_4mib_malloc("steady")
    assert mapped == 0 and desc.startswith("glibc steady heap")
    mapped, desc = _mmapped_bytes_of_a_4mib_malloc("default")  # glibc's 128 KiB threshold: its own mmap
    assert mapped >= 4 << 20 and "defaults" in desc


def test_bad_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(allocator.ENV, "jemalloc")
    with pytest.raises(ValueError, match="HERA_MALLOC='jemalloc' is not one of steady, default"):
        allocator.requested_mode()
    with pytest.raises(ValueError, match="allocator mode 'fast'"):
        allocator.steady_heap("fast")


def test_not_glibc_and_refused_settings_are_reported(monkeypatch):
    monkeypatch.setattr(allocator, "_libc", lambda: None)
    assert allocator.steady_heap("steady") == "unchanged: not glibc"
    monkeypatch.setattr(allocator, "_libc", lambda: types.SimpleNamespace(mallopt=lambda p, v: 0))
    assert "refused" in allocator.steady_heap("steady")


def test_bench_allocator_needs_two_processes(capsys):
    from hera.cli import main

    assert main(["bench", "allocator", "--model", "din", "--processes", "1"]) != 0
    assert "--processes must be >= 2" in capsys.readouterr().err
