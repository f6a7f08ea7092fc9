"""Worker processes for ``candor serve``: the parent binds the listening sockets, forks the workers that serve
them, and supervises.

The parent holds no database connection, key store or signer while it forks: each worker builds its own
(:data:`Build`), since neither connection pools nor PKCS#11 sessions survive a fork. The kernel hands each new
connection on a shared listening socket to one of the workers accepting on it.

Supervision: a worker that dies is replaced (after a growing pause if it keeps dying at once, and the whole
server stops if it dies at start-up five times running); SIGTERM, SIGINT or SIGHUP to the parent is forwarded
to the workers as SIGTERM, which makes them finish their requests and exit, and the parent exits when they
all have (SIGKILL after :data:`STOP_GRACE_SECONDS`). A worker whose parent dies is sent SIGTERM by the kernel
(Linux ``PR_SET_PDEATHSIG``), so no worker outlives the server.

With ``[server] cpu_affinity = "auto"`` each worker is bound to one core (:func:`core_for`), with the lint helpers
it starts: on a host of its own, a worker's threads then stay on one core's caches.

Slot 0 is the **primary**: the one worker where background singletons run (``Worker.background``: a CT log
sequencer, a CRL scheduler). Its replacement after a crash is primary again, so there is always exactly one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PRIMARY_SLOT = 0
STOP_GRACE_SECONDS = 25.0
QUICK_EXIT_SECONDS = 5.0  # a worker that dies sooner than this after its start died "at start-up"
MAX_QUICK_EXITS = 5
RESTART_PAUSE_SECONDS = 0.25  # doubled after each quick exit in a row, at most 5 s
_WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
_PR_SET_PDEATHSIG = 1


@dataclass
class _Slots:
    count: int
    pids: dict[int, int] = field(default_factory=dict)  # pid -> slot
    started: dict[int, float] = field(default_factory=dict)  # pid -> monotonic start
    due: dict[int, float] = field(default_factory=dict)  # slot -> monotonic time of its restart
    quick_exits: int = 0


def core_for(slot: int, allowed: Collection[int]) -> int:
    """The core the worker of *slot* is bound to with ``[server] cpu_affinity = "auto"``: the cores the server may
    run on (*allowed*, its own affinity, which a container's cpuset or ``taskset`` may narrow), in order, in turn.
    A replacement worker takes its slot's core again."""
    cores = sorted(allowed)
    if not cores:
        raise ValueError("no core to bind a worker to")
    return cores[slot % len(cores)]


def supervise(workers: int, run_worker: Callable[[int], int], *, bind_cores: bool = False) -> int:
    """Fork *workers* processes running ``run_worker(slot)`` (slots 0 to workers - 1; its return value is the
    worker's exit code) and keep them running until a stop signal; return the parent's exit code. *bind_cores*:
    each worker is bound to :func:`core_for` its slot before it builds anything, so that its threads and the lint
    helpers it starts run there too."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    slots = _Slots(workers)
    stopping_since: float | None = None
    exit_code = 0
    try:
        for slot in range(workers):
            _spawn(slots, slot, run_worker, previous, bind_cores)
        while slots.pids or slots.due:  # a restart may be due with no worker left running
            now = time.monotonic()
            timeout = min([1.0, *(max(0.0, t - now) for t in slots.due.values())])
            received = signal.sigtimedwait(_WATCHED, timeout)
            if received is not None and received.si_signo != signal.SIGCHLD and stopping_since is None:
                log.info("signal %d: stopping %d worker(s)", received.si_signo, len(slots.pids))
                stopping_since = time.monotonic()
                slots.due.clear()
                _signal_all(slots, signal.SIGTERM)
            for slot in _reap(slots, stopping=stopping_since is not None):
                if stopping_since is not None:
                    continue
                if not _schedule_restart(slots, slot):
                    log.error("workers keep dying at start-up; stopping")
                    exit_code = 1
                    stopping_since = time.monotonic()
                    slots.due.clear()
                    _signal_all(slots, signal.SIGTERM)
            if stopping_since is None:
                for slot, when in list(slots.due.items()):
                    if when <= time.monotonic():
                        del slots.due[slot]
                        _spawn(slots, slot, run_worker, previous, bind_cores)
            elif time.monotonic() - stopping_since > STOP_GRACE_SECONDS:
                _signal_all(slots, signal.SIGKILL)
    finally:
        if slots.pids:  # an exception in the supervisor itself: leave no worker behind
            _signal_all(slots, signal.SIGKILL)
            for pid in list(slots.pids):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return exit_code


def _spawn(
    slots: _Slots, slot: int, run_worker: Callable[[int], int], mask: set[int | signal.Signals], bind_cores: bool
) -> None:
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the caller's stack
        code = 1
        try:
            _die_with_parent(parent)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if bind_cores:
                _bind(slot)
            code = run_worker(slot)
        except BaseException:
            log.exception("worker %d (slot %d) failed", os.getpid(), slot)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    slots.pids[pid] = slot
    slots.started[pid] = time.monotonic()
    log.info("worker %d started (slot %d%s)", pid, slot, ", primary" if slot == PRIMARY_SLOT else "")


def _bind(slot: int) -> None:
    """Bind this worker to its slot's core. Binding is for speed only: a worker that cannot be bound (a cpuset
    changed under the server, say) serves unbound, and says so."""
    try:
        os.sched_setaffinity(0, {core_for(slot, os.sched_getaffinity(0))})
    except (OSError, ValueError) as exc:
        log.warning("worker %d (slot %d) could not be bound to a core, and serves unbound: %s", os.getpid(), slot, exc)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _reap(slots: _Slots, *, stopping: bool) -> list[int]:
    """The slot of every worker that has ended, removed from *slots*."""
    ended = []
    while slots.pids:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            slots.pids.clear()
            break
        if pid == 0:
            break
        slot = slots.pids.pop(pid, None)
        started = slots.started.pop(pid, time.monotonic())
        if slot is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        ended.append(slot)
        if time.monotonic() - started < QUICK_EXIT_SECONDS:
            slots.quick_exits += 1
        else:
            slots.quick_exits = 0
        log.log(
            logging.INFO if stopping else logging.WARNING,
            "worker %d (slot %d) ended with %s",
            pid,
            slot,
            _describe(code),
        )
    return ended


def _schedule_restart(slots: _Slots, slot: int) -> bool:
    """Plan the replacement of a dead worker; False when workers keep dying at start-up."""
    if slots.quick_exits >= MAX_QUICK_EXITS:
        return False
    pause = 0.0 if slots.quick_exits == 0 else min(RESTART_PAUSE_SECONDS * 2**slots.quick_exits, 5.0)
    slots.due[slot] = time.monotonic() + pause
    return True


def _signal_all(slots: _Slots, signum: signal.Signals) -> None:
    for pid in slots.pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit code {code}"


__all__ = ["PRIMARY_SLOT", "STOP_GRACE_SECONDS", "supervise"]
