"""An isolated worker process for code a user uploaded, with a time limit per call and the OS's limits.

The server starts `python -m whylabel.models.worker FD` and talks to it over a socket pair: each request is
an operation name and its arguments, each reply a value or an error's kind and one-line message. In the worker:

- an address-space limit (RLIMIT_AS, `MEMORY_BYTES`), no file writes (RLIMIT_FSIZE 0), no core dumps, and a
  fresh empty working folder; the model's own graph was checked against the allowlist (`models.sandbox`);
- on the server: a wall-clock limit per call (`CALL_SECONDS`). A call past it kills the worker; a worker that
  dies (a crash, the memory limit, a kill) answers its call with a `WorkerError`; the next call starts a fresh
  one and runs its setup again (loading the model from the bytes the server kept).

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
"""Wall-clock seconds one call into a user's model may take before the worker is stopped."""
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


def operation(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function the worker runs for requests named `name`."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        OPERATIONS[name] = func
        return func

    return register


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
    the same model again.
    """

    def __init__(self, setup: tuple[str, tuple[Any, ...]], name: str = "user model") -> None:
        self.setup, self.name = setup, name
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.lock = threading.Lock()
        self.ready: Any = None
        self.starts = 0
        self.used = 0.0

    def call(self, op: str, *args: Any, seconds: float | None = None) -> Any:
        """The worker's answer to `op(*args)`; WorkerError on a timeout or a crash (the worker is then gone)."""
        with self.lock:
            self.used = time.monotonic()
            if self.process is None or self.process.poll() is not None:
                self.start()
            return self.ask(op, args, CALL_SECONDS if seconds is None else seconds)

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
        self.ready = self.ask(op, args, CALL_SECONDS)

    def ask(self, op: str, args: tuple[Any, ...], seconds: float) -> Any:
        assert self.conn is not None and self.process is not None
        try:
            self.conn.send_bytes(pickle.dumps((op, args), protocol=pickle.HIGHEST_PROTOCOL))
            if not self.conn.poll(seconds):
                self.stop()
                LOG.warning("%s: %s took over %.0f s; its worker was stopped", self.name, op, seconds)
                raise WorkerError(f"The model did not answer within {seconds:.0f} s ({op}); it was stopped.")
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
