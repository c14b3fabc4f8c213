"""An isolated worker process for code a user uploaded, with a time limit per call and the OS's limits.

The server starts `python -m whylabel.models.worker FD` and talks to it over a socket pair: each request is
an operation name and its arguments, each reply a value or an error's kind and one-line message. In the worker:

- an address-space limit (RLIMIT_AS, `MEMORY_BYTES`), no file writes (RLIMIT_FSIZE 0), no core dumps, and a
  fresh empty working folder; the model's own graph was checked against the allowlist (`models.sandbox`);
- on the server: a wall-clock limit on each call. The setup, which loads and checks the model, gets a short one
  (`CHECK_SECONDS`) and times one forward pass; every later call gets `call_limit` of that time and the passes
  it asks for (at least `CALL_SECONDS`, at most `MAX_CALL_SECONDS`). A call past its limit kills the worker; a
  worker that dies (a crash, the memory limit, a kill) answers its call with a `WorkerError`; the next call
  starts a fresh one and runs its setup again (loading the model from the bytes the server kept).

Replies are unpickled by `SafeUnpickler`, which builds only plain data, numpy arrays and the few whylabel
records that cross (a worker is not trusted to send objects that run code when unpickled).

Operations are registered with `@operation`; rooms above `models` add theirs by naming their module in
`PLUGINS`, which the worker imports before it applies its limits.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import pickle
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

LOG = logging.getLogger("whylabel.worker")
CALL_SECONDS = float(os.environ.get("WHYLABEL_WORKER_SECONDS", "120"))
"""Wall-clock seconds any call into a user's model may take before the worker is stopped; a slow model's long
calls get more (`call_limit`)."""
CHECK_SECONDS = float(os.environ.get("WHYLABEL_CHECK_SECONDS", "20"))
"""Wall-clock seconds for a worker's setup: loading the model and checking it (a batch of 2 against one image
alone), three forward passes in all. CALL_SECONDS instead where that is lower."""
MAX_CALL_SECONDS = float(os.environ.get("WHYLABEL_WORKER_MAX_SECONDS", "1800"))
"""The most wall-clock seconds a call gets, however slow the model and however many passes it asks for."""
SLACK = 4.0
"""A call's limit is this many times the passes it asks for times the measured forward pass: room for the
backward pass of a gradient method (about twice a forward) and a busier machine than the one the check saw."""
RUN_PASSES = 1000
"""The forward passes assumed for a call that does not say how many it makes: a whole method run in the worker
(integrated gradients' largest number of steps is 1000), the engine's calibration (about 500), a randomised copy."""
START_SECONDS = 120.0
"""Seconds a fresh worker may take to import its libraries and say it is ready."""
MEMORY_BYTES = int(float(os.environ.get("WHYLABEL_WORKER_MEMORY_GB", "6")) * 2**30)
"""The worker's address-space limit: a model that allocates more gets an error, not the server's memory."""
MAX_WORKERS = int(os.environ.get("WHYLABEL_WORKERS", "4"))
"""Worker processes alive at once; starting another stops the one idle longest (it restarts when next called)."""
PLUGINS: list[str] = ["whylabel.models.remote", "whylabel.models.user"]
"""Modules the worker imports at start: each registers its operations."""
OPERATIONS: dict[str, Callable[..., Any]] = {}
STATE: dict[str, Any] = {}
"""What a worker keeps between calls (its models), in the worker process."""
SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "float32"),
    ("numpy", "float64"),
    ("numpy", "int64"),
    ("numpy", "bool_"),
    ("builtins", "slice"),
    ("builtins", "frozenset"),
    ("builtins", "set"),
    ("builtins", "complex"),
    ("whylabel.explainers.progressive", "Estimate"),
    ("whylabel.explainers.progressive", "Stage"),
}
"""What a reply may contain besides plain data."""


class WorkerError(RuntimeError):
    """A call into a user's model that timed out, crashed its worker, or failed there; one line."""


PASSES: dict[str, Callable[..., int]] = {}
"""For the operations that say so, the forward passes a request makes, from its arguments (as the server sends
them); any other operation is taken to make RUN_PASSES."""


def operation(
    name: str, passes: Callable[..., int] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function the worker runs for requests named `name`.

    `passes`, given the request's arguments, says how many forward passes of the model it makes: its time
    limit scales with them (`call_limit`).
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        OPERATIONS[name] = func
        if passes is not None:
            PASSES[name] = passes
        return func

    return register


def call_limit(pass_seconds: float, passes: int) -> float:
    """The wall-clock limit of a call that makes `passes` forward passes of a model whose checked pass took
    `pass_seconds`: SLACK x passes x pass_seconds, at least CALL_SECONDS and at most MAX_CALL_SECONDS."""
    return min(max(CALL_SECONDS, SLACK * passes * pass_seconds), max(MAX_CALL_SECONDS, CALL_SECONDS))


def check_limit() -> float:
    """The wall-clock limit of a worker's setup (loading and checking the model): CHECK_SECONDS, or
    CALL_SECONDS where that is lower."""
    return min(CHECK_SECONDS, CALL_SECONDS)


def pass_count(op: str, args: tuple[Any, ...]) -> int:
    """The forward passes a request makes, as its operation says (RUN_PASSES where it does not)."""
    count = PASSES.get(op)
    return RUN_PASSES if count is None else max(int(count(*args)), 1)


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"the worker sent {module}.{name}, which the server does not accept")
        return super().find_class(module, name)


def safe_loads(data: bytes) -> Any:
    return SafeUnpickler(io.BytesIO(data)).load()


ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError}
"""Error kinds re-raised as themselves on the server; rooms add theirs (ModelError). Others are WorkerError."""


class Worker:
    """One worker process at a time for one user's model; calls are answered one after another.

    `setup` (an operation and its arguments) runs first in every fresh worker, so a restarted one holds
    the same model again. It runs under `check_limit()`; when its reply (a dict) gives `pass_seconds`, the time
    of one forward pass, later calls get `call_limit` of it, else CALL_SECONDS.
    """

    def __init__(self, setup: tuple[str, tuple[Any, ...]], name: str = "user model") -> None:
        self.setup, self.name = setup, name
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.lock = threading.Lock()
        self.ready: Any = None
        self.pass_seconds: float | None = None
        """One forward pass's seconds, as the setup measured it (None until it has)."""
        self.starts = 0
        self.used = 0.0

    def call(self, op: str, *args: Any, seconds: float | None = None) -> Any:
        """The worker's answer to `op(*args)`; WorkerError on a timeout or a crash (the worker is then gone)."""
        with self.lock:
            self.used = time.monotonic()
            if self.process is None or self.process.poll() is not None:
                self.start()
            return self.ask(op, args, self.limit(op, args) if seconds is None else seconds)

    def limit(self, op: str, args: tuple[Any, ...]) -> float:
        """The wall-clock limit of `op(*args)`: `call_limit` of its passes once a check measured a pass."""
        if self.pass_seconds is None:
            return CALL_SECONDS
        return call_limit(self.pass_seconds, pass_count(op, args))

    def start(self) -> None:
        self.stop()
        make_room(self)
        ours, theirs = socket.socketpair()
        with contextlib.closing(theirs):
            self.process = subprocess.Popen(
                [sys.executable, "-m", "whylabel.models.worker", str(theirs.fileno()), *PLUGINS],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                cwd=tempfile.gettempdir(),
                env={**os.environ, "WHYLABEL_CACHE": "off"},  # no engine cache: the worker may not write files
            )
        self.conn = Connection(ours.detach())
        self.starts += 1
        LOG.info("started worker %d for %s (pid %d)", self.starts, self.name, self.process.pid)
        self.ask("ping", (), START_SECONDS)
        op, args = self.setup
        checking = CHECK_SECONDS <= CALL_SECONDS  # else the general limit is the one a hang runs into
        self.ready = self.ask(op, args, check_limit(), CHECKING if checking else None)
        self.pass_seconds = measured(self.ready)

    def ask(self, op: str, args: tuple[Any, ...], seconds: float, doing: str | None = None) -> Any:
        """The reply to `op(*args)` within `seconds`; `doing` says what the model was doing if it does not answer."""
        assert self.conn is not None and self.process is not None
        try:
            self.conn.send_bytes(pickle.dumps((op, args), protocol=pickle.HIGHEST_PROTOCOL))
            if not self.conn.poll(seconds):
                self.stop()
                LOG.warning("%s: %s took over %s s; its worker was stopped", self.name, op, show(seconds))
                raise WorkerError(
                    f"The model did not answer within {show(seconds)} s {doing or f'({op})'}; it was stopped."
                )
            reply = self.conn.recv_bytes()
        except (EOFError, OSError) as err:
            code = self.stop()
            LOG.warning("%s: the worker stopped during %s (exit code %s: %s)", self.name, op, code, err)
            raise WorkerError(f"The model's worker stopped while running it ({describe_exit(code)}).") from None
        try:
            status, *value = safe_loads(reply)
        except pickle.UnpicklingError as err:
            self.stop()
            LOG.warning("%s: the worker's reply to %s was refused (%s); it was stopped", self.name, op, err)
            raise WorkerError(f"The model's worker sent a reply the server does not accept ({err}).") from None
        if status == "ok":
            return value[0]
        kind, message = value
        LOG.info("%s: %s refused in the worker: %s: %s", self.name, op, kind, message)
        raise ERRORS.get(kind, WorkerError)(message)

    def stop(self) -> int | None:
        """Kill the worker if it runs; its exit code, if it had one."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            code = self.process.wait()
        if self.conn is not None:
            self.conn.close()
        self.process, self.conn = None, None
        return code

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()


CHECKING = "while being checked (loading it and running it on grey images)"
"""What a model was doing when its setup did not answer within CHECK_SECONDS."""


def measured(ready: Any) -> float | None:
    """The forward pass's seconds in a setup's reply, if it gives a plausible one (the worker is not trusted)."""
    value = ready.get("pass_seconds") if isinstance(ready, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < float("inf"):
        return float(value)
    return None


def show(seconds: float) -> str:
    """Seconds as a limit is stated: whole from 10 s up, else to two figures (3, 2.5, 0.75)."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2g}"


LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


def make_room(starting: Worker) -> None:
    """Stop idle workers, longest idle first, until `starting` fits within MAX_WORKERS."""
    LIVE.add(starting)
    running = [w for w in LIVE if w is not starting and w.process is not None]
    for idle in sorted(running, key=lambda w: w.used)[: max(len(running) + 1 - MAX_WORKERS, 0)]:
        if idle.lock.acquire(blocking=False):  # one that is answering a call is not idle
            try:
                LOG.info("stopping the worker for %s to make room", idle.name)
                idle.stop()
            finally:
                idle.lock.release()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


@operation("ping")
def ping() -> str:
    return "ready"


def limit() -> None:
    """The OS limits on this (the worker) process, and its end when the server's ends (even mid-loop)."""
    threading.Thread(target=orphaned, args=(os.getppid(),), daemon=True).start()
    os.chdir(tempfile.mkdtemp(prefix="whylabel-worker-"))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def orphaned(parent: int) -> None:
    """End this worker once the server is gone, even while the model loops (TorchScript runs without the GIL).

    Not PR_SET_PDEATHSIG: Linux sends that when the *thread* that started the worker ends, and each page run
    is a thread of its own.
    """
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def serve(conn: Connection) -> None:
    """Answer requests until the server closes the connection."""
    while True:
        try:
            op, args = pickle.loads(conn.recv_bytes())  # from the server, which is trusted
        except EOFError:
            return
        try:
            reply: tuple[Any, ...] = ("ok", OPERATIONS[op](*args))
        except Exception as err:  # any failure of the user's model becomes its one-line message
            reply = ("error", type(err).__name__, message(err))
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def message(err: BaseException) -> str:
    """What the server shows for an error in the worker: its own message when it is ours, else one line."""
    text = str(err)
    return text if type(err).__name__ in ERRORS and "\n" not in text else one_line(err)


def one_line(err: BaseException, limit: int = 200) -> str:
    """The exception type and message on one line; for TorchScript, the error under its traceback."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if lines and lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        text = lines[-1].removeprefix("builtins.")
    else:
        text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str]) -> None:
    fd, plugins = int(argv[0]), argv[1:]
    for name in plugins:
        importlib.import_module(name)
    limit()
    serve(Connection(fd))


if __name__ == "__main__":  # run as the worker: the imported module's registry, not this copy's
    importlib.import_module("whylabel.models.worker").main(sys.argv[1:])
