"""A time and memory budget for symbolic work that really stops it.

SymPy has no timeouts: ``simplify`` of a large derivative, a huge power or a special function at a
big integer can run for minutes, and a thread cannot be stopped. ``run`` therefore calls the work
in a forked child process with an address-space limit, receives the result (or the scaffold
error) through a pipe, and kills the child when the time is up. The child reports which stage it
is in (``stage("derive")``), so an expired budget says where the time went. Nothing here imports
TensorFlow; where ``fork`` does not exist (Windows) the work runs in-process without a budget.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import BudgetExceeded, InternalError, ScaffoldError

T = TypeVar("T")
DEFAULT_SECONDS = 10.0
#: Address space the worker may add to what it inherited: far above any real layer's needs.
#: Added, not absolute: a notebook that imported TensorFlow first holds several GiB already.
MEMORY_BYTES = 2 * 1024**3

_reporter: Callable[[str], None] | None = None


def stage(name: str) -> None:
    """Tell the parent which stage the work is in (a no-op outside a budgeted worker)."""
    if _reporter is not None:
        _reporter(name)


def process_age() -> float:
    """Seconds since this process started (0.0 where the system does not say).

    Linux: the start time in /proc/self/stat (clock ticks after boot) against /proc/uptime.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
        return max(0.0, now - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


#: Kept back from a whole-command budget for what follows the work: writing files, exiting.
FINISHING = 0.3
_command_started: float | None = None  # time.monotonic() when the command's process started


def command_starts_with_process() -> None:
    """Count whole-command budgets from the process start.

    The console script calls this; a command run in-process, as tests do, counts from its
    own start.
    """
    global _command_started
    _command_started = time.monotonic() - process_age()


def whole_command(seconds: float | None) -> float | None:
    """What is left of ``seconds`` counted from the command's start (start-up included).

    Less FINISHING: ``--timeout 10`` ends the command within 10 s of wall-clock time.
    """
    if seconds is None:
        return None
    elapsed = 0.0 if _command_started is None else time.monotonic() - _command_started
    return max(0.05, seconds - elapsed - FINISHING)


def run(func: Callable[..., T], *args, seconds: float | None = DEFAULT_SECONDS, **kwargs) -> T:
    """Return ``func(*args, **kwargs)`` computed within ``seconds`` and ``MEMORY_BYTES``.

    Raises ``BudgetExceeded`` naming the stage when either runs out, or whatever scaffold
    error the work raised. ``seconds=None`` runs in-process with no budget.
    """
    if seconds is None or not hasattr(os, "fork"):
        return func(*args, **kwargs)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_work, args=(sender, func, args, kwargs), daemon=True)
    worker.start()
    sender.close()
    deadline = time.monotonic() + seconds
    current = "starting"
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not receiver.poll(remaining):
                raise BudgetExceeded(
                    f"the symbolic work ran out of time while {current}",
                    hint="simplify the expression, or allow more time with --timeout",
                )
            try:
                kind, payload = receiver.recv()
            except EOFError:
                worker.join(1)
                raise InternalError(
                    f"the worker process died while {current} (exit status {worker.exitcode})"
                ) from None
            if kind == "stage":
                current = payload
            elif kind == "error":
                raise payload
            else:
                return payload
    finally:
        receiver.close()
        if worker.is_alive():
            worker.kill()
        worker.join()


def _work(sender, func, args, kwargs) -> None:  # pragma: no cover - runs in the child
    global _reporter
    current = ["starting"]

    def report(name: str) -> None:
        current[0] = name
        sender.send(("stage", name))

    _reporter = report
    # What the child inherited (SymPy's, black's and Jinja's module state) is never garbage
    # here: frozen, the collector stops walking it on every collection, which was ~50 ms of a
    # first generation (black allocates many short-lived objects).
    gc.freeze()
    try:
        import resource

        limit = _address_space() + MEMORY_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    try:
        sender.send(("ok", func(*args, **kwargs)))
    except ScaffoldError as err:
        sender.send(("error", err))
    except MemoryError:
        sender.send(
            (
                "error",
                BudgetExceeded(
                    f"the symbolic work ran out of memory ({MEMORY_BYTES >> 30} GiB)"
                    f" while {current[0]}",
                    hint="simplify the expression",
                ),
            )
        )
    except RecursionError:
        sender.send(
            ("error", BudgetExceeded(f"the expression is too deeply nested for {current[0]}"))
        )
    except BaseException as err:  # a bug: report it rather than die silently
        sender.send(("error", InternalError(f"{type(err).__name__} while {current[0]}: {err}")))
    finally:
        sender.close()
        os._exit(0)


def _address_space() -> int:
    """The bytes of address space this process holds (Linux; 0 where unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
