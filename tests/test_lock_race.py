"""The run/store writers' lock (stl.store.file_lock, an OS lock via filelock) under a race: 4
processes try it at the same instant, 100 times; every time exactly one holds it. Half the trials
start with a stale lock file left by a process killed with SIGKILL while holding the lock."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

from stl.store import StoreLocked, file_lock, is_locked

PROCS, TRIALS = 4, 100


def _worker(lock_path, start, attempted, released, holders, wins, k):
    for trial in range(TRIALS):
        start.wait()  # all 4 try at the same instant
        try:
            with file_lock(lock_path):
                with holders.get_lock():
                    holders[trial] += 1
                wins[k] += 1
                attempted.wait()  # hold it until every process has tried
        except StoreLocked:
            attempted.wait()
        released.wait()  # the holder has released before the next trial starts


def _hold_and_die(lock_path, ready):
    with file_lock(lock_path):
        ready.set()
        time.sleep(60)


def _stale_lock(lock_path, ctx):
    """A lock file whose holder was killed with SIGKILL while holding it."""
    ready = ctx.Event()
    p = ctx.Process(target=_hold_and_die, args=(lock_path, ready))
    p.start()
    assert ready.wait(30)
    assert is_locked(lock_path)
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)


def test_four_processes_exactly_one_holder_in_100_trials(tmp_path):
    ctx = mp.get_context("fork")
    lock_path = str(tmp_path / "run.h5.lock")
    start, attempted, released = (ctx.Barrier(PROCS + 1) for _ in range(3))
    holders = ctx.Array("i", TRIALS)
    wins = ctx.Array("i", PROCS)
    procs = [ctx.Process(target=_worker, args=(lock_path, start, attempted, released, holders, wins, k))
             for k in range(PROCS)]
    for p in procs:
        p.start()
    try:
        for trial in range(TRIALS):
            if trial % 2:  # a stale lock file from a killed holder
                _stale_lock(lock_path, ctx)
            elif os.path.exists(lock_path):  # no lock file at all
                os.unlink(lock_path)
            start.wait(timeout=60)
            attempted.wait(timeout=60)
            released.wait(timeout=60)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    counts = list(holders)
    assert counts == [1] * TRIALS, {i: c for i, c in enumerate(counts) if c != 1}
    assert sum(wins) == TRIALS
    assert not is_locked(lock_path)
