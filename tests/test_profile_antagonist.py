"""Antagonists (Bubble-Up bubbles): they start pinned, exert measurable work and are always cleaned up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from hera.cli import main
from hera.errors import HeraError
from hera.profile.antagonist import Antagonist, self_test

CORE = sorted(os.sched_getaffinity(0))[-1]
SMALL = {"llc_bytes": 4 * 1024**2, "buffer_bytes": 16 * 1024**2}


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bandwidth", "cache"])
def test_antagonist_is_pinned_exerts_work_and_stops(kind):
    with Antagonist(kind, 1.0, [CORE], **SMALL) as ant:
        assert ant.alive() and len(ant.pids) == 1
        assert psutil.Process(ant.pids[0]).cpu_affinity() == [CORE]
        time.sleep(0.1)  # settle, as every caller does (first touches; a busy CPU starts it late)
        sample = ant.measure(0.3)
        pids = ant.pids
    assert sample.bytes_per_s > 0 and sample.lines_per_s > 0
    assert 0 < sample.duty <= 1.0
    assert all(_gone(p) for p in pids)


@pytest.mark.slow
def test_the_busy_core_antagonist_keeps_its_core_busy_without_memory_traffic():
    """``cpu``: duty-cycled like ``bandwidth``, but it moves nothing beyond its core (no bytes, no lines)."""
    from hera.profile.antagonist import duty_of

    with Antagonist("cpu", 1.0, [CORE]) as ant:
        assert psutil.Process(ant.pids[0]).cpu_affinity() == [CORE]
        full = ant.measure(0.2)
    with Antagonist("cpu", 0.25, [CORE]) as ant:
        time.sleep(0.05)
        low = ant.measure(0.3)
        assert ant.counters()["cpu_s"] > 0
    assert full.bytes_per_s == 0 and full.lines_per_s == 0
    assert full.duty > 0.8 and 0.02 < low.duty < 0.8 and low.duty < full.duty
    assert (duty_of("cpu", 0.3), duty_of("bandwidth", 0.3), duty_of("cache", 0.3), duty_of("cache", 0.0)) == (
        0.3, 0.3, 1.0, 0.0)


def test_zero_intensity_is_idle():
    with Antagonist("bandwidth", 0.0, [CORE], **SMALL) as ant:
        sample = ant.measure(0.1)
    assert sample.bytes_per_s == 0 and sample.duty == 0


@pytest.mark.slow
def test_duty_cycle_follows_intensity():
    with Antagonist("bandwidth", 0.25, [CORE], **SMALL) as ant:
        time.sleep(0.05)
        low = ant.measure(0.3)
    assert 0.02 < low.duty < 0.8  # the active fraction of each 1 ms period (loose: the machine is shared)


def test_processes_are_cleaned_up_on_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with Antagonist("cache", 0.5, [CORE], **SMALL) as ant:
            pids = ant.pids
            assert all(psutil.pid_exists(p) for p in pids)
            raise RuntimeError("boom")
    assert all(_gone(p) for p in pids)
    ant.stop()  # idempotent


@pytest.mark.slow
def test_no_orphans_when_the_owner_dies_without_cleanup(tmp_path):
    code = (
        "import os, sys\n"
        "from hera.profile.antagonist import Antagonist\n"
        f"a = Antagonist('bandwidth', 1.0, [{CORE}], llc_bytes=4 << 20, buffer_bytes=16 << 20).start()\n"
        "print(a.pids[0], flush=True)\n"
        "os._exit(3)\n"  # no stop(), no atexit handlers
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    pid = int(proc.stdout.split()[0])
    assert _gone(pid), f"antagonist {pid} outlived its owner"


@pytest.mark.slow
def test_self_test_measures_its_own_bandwidth():
    r = self_test("bandwidth", 1.0, [CORE], duration_s=0.2, **SMALL)
    assert r["gbps"] > 0 and r["kind"] == "bandwidth" and r["cores"] == [CORE]


@pytest.mark.parametrize("kw, msg", [
    ({"kind": "disk", "intensity": 1.0, "cores": [0]}, "unknown antagonist kind 'disk'"),
    ({"kind": "cache", "intensity": 1.5, "cores": [0]}, "intensity must be a number in [0, 1]"),
    ({"kind": "cache", "intensity": 0.5, "cores": []}, "at least one core"),
    ({"kind": "cache", "intensity": 0.5, "cores": [4096]}, "not on this machine"),
])
def test_bad_antagonist_inputs_are_one_line_errors(kw, msg):
    with pytest.raises(HeraError, match=msg.replace("[", r"\[").replace("]", r"\]")) as exc:
        Antagonist(**kw)
    assert "\n" not in str(exc.value)


def test_antagonist_cli_prints_json(capsys):
    assert main(["profile", "antagonist", "--kind", "cache", "--intensity", "0.25", "--cores", str(CORE),
                 "--duration-s", "0.1"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["results"][0]["kind"] == "cache" and last["results"][0]["lines_per_s"] > 0


class _TornCounters(list):
    """A counter array that a writer changes between two of the reader's reads (``changes`` times)."""

    def __init__(self, values, writes):
        super().__init__(values)
        self.writes = list(writes)

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(key, slice) and self.writes:
            self[:] = self.writes.pop(0)  # the writer moves on after this read
        return out


def _slot(seq, active, wall):
    from hera.profile import antagonist as a

    v = [0.0] * a._SLOTS
    v[a._SEQ], v[a._ACTIVE_S], v[a._WALL_S] = seq, active, wall
    return v


def test_counter_reads_never_pair_new_active_time_with_old_wall_time():
    """The race behind a duty of 1.0006: a read while the process writes (odd sequence) or that straddles a
    write is retried, so active_s <= wall_s holds in every snapshot the reader returns."""
    from hera.profile import antagonist as a

    mid_write = _slot(1, 2.0, 1.0)  # active already added, wall not yet: torn
    done = _slot(2, 2.0, 2.0)
    c = _TornCounters(mid_write, [done, done])
    snap = a._read_slot(c, 0)
    assert snap[a._ACTIVE_S] <= snap[a._WALL_S] and snap[a._SEQ] == 2
    straddled = _TornCounters(_slot(2, 1.0, 1.0), [_slot(4, 3.0, 3.0), _slot(4, 3.0, 3.0)])
    snap = a._read_slot(straddled, 0)
    assert snap[a._SEQ] == 4 and snap[a._ACTIVE_S] == snap[a._WALL_S] == 3.0


def test_counter_reads_of_a_process_killed_mid_write_give_up():
    from hera.profile import antagonist as a

    stuck = _slot(3, 2.0, 1.0)  # odd for good: its writer died
    t0 = time.monotonic()
    assert a._read_slot(list(stuck), 0)[a._SEQ] == 3
    assert time.monotonic() - t0 >= a._SEQ_WAIT_S  # it waited for the writer first


class _PreemptedWriter(list):
    """A writer that holds its sequence odd for ``hold_s`` (preempted mid-write), then finishes."""

    def __init__(self, values, done, hold_s):
        super().__init__(values)
        self.done, self.until = done, time.monotonic() + hold_s

    def __getitem__(self, key):
        if isinstance(key, slice) and time.monotonic() >= self.until:
            self[:] = self.done
        return super().__getitem__(key)


def test_counter_reads_wait_for_a_writer_preempted_mid_write():
    """A writer off its core for a scheduler tick holds the sequence odd for milliseconds, thousands of reads."""
    from hera.profile import antagonist as a

    c = _PreemptedWriter(_slot(1, 2.0, 1.0), _slot(2, 2.0, 2.0), hold_s=0.01)
    snap = a._read_slot(c, 0)
    assert snap[a._SEQ] == 2 and snap[a._ACTIVE_S] <= snap[a._WALL_S]


def test_measured_duty_never_exceeds_one():
    """Live: consecutive counter snapshots, read as fast as the reader can for half a second (tens of
    thousands of reads, so a window that straddles the process's write is all but certain), never show more
    active time than wall time between them."""
    with Antagonist("bandwidth", 1.0, [CORE], **SMALL) as ant:
        time.sleep(0.05)
        worst, prev, deadline = 0.0, ant.counters(), time.monotonic() + 0.5
        while time.monotonic() < deadline:
            cur = ant.counters()
            worst = max(worst, (cur["active_s"] - prev["active_s"]) - (cur["wall_s"] - prev["wall_s"]))
            prev = cur
    assert worst <= 1e-9, f"active time exceeded wall time by {worst:.2e} s between two reads"
