"""One script run of the page: where Streamlit may stop it, and the log lines that say what it computed.

When the user replaces a run (another image, another setting), Streamlit stops the old one only at its next
"yield point", the next time the script talks to Streamlit. A long computation talks to nobody, so it would
run to the end in the background while the new run waits for the cores. `checkpoint` is such a yield point,
called from every progress report: the superseded run stops within one batch instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st
from streamlit.logger import get_logger

log = get_logger("whylabel")
T = TypeVar("T")


def checkpoint() -> None:
    """Let Streamlit stop this run here if a newer one has been asked for.

    Streamlit checks for a pending rerun or stop each time the script reads its session state (the same check
    every st call makes), and raises its own control-flow exception, which is not an `Exception`, so no
    `except Exception` in our code swallows it.
    """
    _ = "whylabel" in st.session_state


def progress_bar(bar: Any, text: str) -> Callable[[float], None]:
    """A progress callback for a computation: moves `bar` (an `st.progress`), and is a checkpoint at every call."""
    return with_checkpoints(throttled(lambda done: bar.progress(done, text=f"{text} {done:.0%}")))


def with_checkpoints(progress: Callable[[float], None]) -> Callable[[float], None]:
    """`progress`, with a checkpoint before each report."""

    def report(done: float) -> None:
        checkpoint()
        progress(done)

    return report


def throttled(update: Callable[[float], None], step: float = 0.1) -> Callable[[float], None]:
    """Pass progress on only when it has moved by `step` (or reached 1): each update is a message the
    browser re-renders, and on a small machine that rendering competes with the computation itself."""
    shown = [-1.0]

    def progress(done: float) -> None:
        if done - shown[0] >= step or (done >= 1.0 > shown[0]):
            shown[0] = done
            update(done)

    return progress


@contextmanager
def logged(what: str) -> Iterator[None]:
    """Log when a computation starts, finishes, fails, or is stopped because the user replaced the run."""
    start = time.perf_counter()
    log.info("started %s", what)
    try:
        yield
    except Exception as err:
        log.info("failed %s after %.2f s: %s", what, time.perf_counter() - start, err)
        raise
    except BaseException:  # Streamlit's rerun or stop: the user replaced this run
        log.info("stopped %s after %.2f s: the run was superseded", what, time.perf_counter() - start)
        raise
    log.info("finished %s in %.2f s", what, time.perf_counter() - start)


def logged_call(what: str, compute: Callable[[], T]) -> Callable[[], T]:
    """`compute`, logged as `what` when it runs (a cache hit never calls it, so logs nothing)."""

    def run() -> T:
        with logged(what):
            return compute()

    return run
