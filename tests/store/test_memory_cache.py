"""The memory cache: sizes counted as stated, least recently used dropped first, one computation per missing key.

Thread tests prove waiting and overlap with events (the cache's `wait` hook says when a thread is waiting), not
with timing; every wait has a generous timeout so that a bug fails the test instead of hanging it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from whylabel.store import memory
from whylabel.store.memory import SMALL, Cache, size_of

MB = 2**20
TIMEOUT = 30  # seconds: only reached when the cache is broken


def megabyte(fill: int = 0) -> np.ndarray:
    return np.full(MB, fill, dtype=np.uint8)  # exactly 1,048,576 bytes


# ---------------------------------------------------------------------------------------------- size_of


def test_size_of_counts_arrays_and_images_by_their_pixels() -> None:
    assert size_of(np.zeros((100, 100), np.float32)) == 100 * 100 * 4
    assert size_of(np.zeros((7, 5, 3), np.uint8)) == 105
    assert size_of(Image.new("RGB", (300, 200))) == 300 * 200 * 3
    assert size_of(Image.new("RGBA", (300, 200))) == 300 * 200 * 4
    assert size_of(Image.new("L", (300, 200))) == 300 * 200
    assert size_of(Image.new("F", (10, 10))) == 10 * 10 * 4
    assert size_of(b"x" * 1000) == 1000


def test_a_view_counts_the_array_it_keeps_alive_and_a_shared_array_counts_once() -> None:
    big = np.zeros(1000, np.float64)
    assert size_of(big[:10]) == 8000  # the slice keeps all 8,000 bytes alive
    assert size_of((big, big[5:], big)) == SMALL + 8000  # one tuple, one array


def test_size_of_walks_containers_and_dataclasses() -> None:
    @dataclasses.dataclass
    class Held:
        heatmap: np.ndarray
        extras: dict[str, Any]
        seconds: float

    a, b = np.zeros(256, np.float32), np.zeros(50, np.int64)
    value = Held(a, {"curve": [b]}, 1.5)
    # The dataclass, its float, the dict, its key (a 5-character string), the list: SMALL each, plus the arrays.
    assert size_of(value) == 1024 + 400 + SMALL + SMALL + SMALL + (SMALL + 5) + SMALL
    assert size_of(None) == size_of(3) == size_of(object()) == SMALL


def test_size_of_ends_on_cycles() -> None:
    loop: list[Any] = [np.zeros(10, np.uint8)]
    loop.append(loop)
    assert size_of(loop) == SMALL + 10


# ---------------------------------------------------------------------------------------------- bytes and order


def test_three_megabytes_in_two_and_a_half_drop_the_least_recently_used() -> None:
    cache = Cache(int(2.5 * MB))
    first, second, third = megabyte(1), megabyte(2), megabyte(3)
    assert cache.get_or_compute("first", lambda: first) is first
    assert cache.get_or_compute("second", lambda: second) is second
    assert cache.nbytes == 2 * MB
    assert cache.get("first") is first  # read: now the most recently used

    assert cache.get_or_compute("third", lambda: third) is third

    assert "second" not in cache  # the least recently used went
    assert cache.get("first") is first and cache.get("third") is third
    assert cache.nbytes == 2 * MB and len(cache) == 2


def test_a_hit_refreshes_an_entry_and_never_computes() -> None:
    cache = Cache(int(2.5 * MB))
    cache.get_or_compute("first", megabyte)
    cache.get_or_compute("second", megabyte)
    held = cache.get_or_compute("first", lambda: pytest.fail("computed a kept value"))
    assert held is not None

    cache.get_or_compute("third", megabyte)

    assert [key for key, _ in cache.items()] == ["first", "third"]


def test_a_value_larger_than_the_bound_is_returned_not_kept_and_drops_nothing() -> None:
    cache = Cache(MB)
    small = np.zeros(1000, np.uint8)
    cache.get_or_compute("small", lambda: small)
    big = np.zeros(MB + 1, np.uint8)
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return big

    assert cache.get_or_compute("big", compute) is big
    assert "big" not in cache and cache.get("small") is small and cache.nbytes == 1000
    cache.get_or_compute("big", compute)
    assert len(calls) == 2  # not kept, so computed again


def test_put_replaces_and_pop_and_clear_give_the_bytes_back() -> None:
    cache = Cache(10 * MB)
    cache.put("a", megabyte())
    cache.put("a", np.zeros(10, np.uint8))
    assert cache.nbytes == 10
    assert not cache.put("a", np.zeros(11 * MB, np.uint8))  # too big: the old value goes too
    assert "a" not in cache and cache.nbytes == 0
    cache.put("b", megabyte())
    cache.put("c", megabyte())
    assert cache.pop("b") is not None and cache.nbytes == MB
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and cache.get("c", "gone") == "gone"


def test_max_entries_bounds_the_count_as_well() -> None:
    cache = Cache(MB, max_entries=2)
    for key in "abc":
        cache.put(key, key)
    assert [key for key, _ in cache.items()] == ["b", "c"]


def test_a_zero_budget_keeps_nothing_and_bad_bounds_are_refused() -> None:
    cache = Cache(0)
    assert cache.get_or_compute("a", lambda: 1) == 1 and len(cache) == 0
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="max_bytes"):
            Cache(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_entries"):
        Cache(10, max_entries=0)


# ---------------------------------------------------------------------------------------------- single flight


class Waiting:
    """The `wait` hook: records which threads are waiting on another's computation."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.threads: set[int] = set()
        self.lock = threading.Lock()
        self.all_waiting = threading.Event()

    def __call__(self) -> None:
        with self.lock:
            self.threads.add(threading.get_ident())
            if len(self.threads) >= self.expected:
                self.all_waiting.set()


def run_threads(n: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread never came back"


def blocked_compute(waiting: Waiting, result: Callable[[], Any]) -> tuple[Callable[[], Any], list[int]]:
    """A compute that returns `result()` only once every other thread waits for it; and its list of calls."""
    calls: list[int] = []

    def compute() -> Any:
        calls.append(threading.get_ident())
        assert waiting.all_waiting.wait(TIMEOUT), "the other threads did not wait"
        return result()

    return compute, calls


def test_threads_asking_one_missing_key_compute_it_once_and_share_the_result() -> None:
    n = 8
    cache = Cache(10 * MB)
    waiting = Waiting(n - 1)
    compute, calls = blocked_compute(waiting, lambda: np.arange(100))
    got: list[Any] = [None] * n

    def ask(i: int) -> None:
        got[i] = cache.get_or_compute("key", compute, wait=waiting, poll=0.01)

    run_threads(n, ask)

    assert len(calls) == 1
    assert len(waiting.threads) == n - 1 and calls[0] not in waiting.threads
    assert all(value is got[0] for value in got) and got[0] is cache.get("key")


def test_single_flight_without_a_wait_hook_barrier_start() -> None:
    n = 8
    cache = Cache(10 * MB)
    barrier = threading.Barrier(n)
    calls = []
    release = threading.Event()

    def compute() -> object:
        calls.append(1)
        release.wait(0.3)  # the others arrive meanwhile (if one is late, it finds the kept value: still one call)
        return object()

    got: list[Any] = [None] * n

    def ask(i: int) -> None:
        barrier.wait(TIMEOUT)
        got[i] = cache.get_or_compute("key", compute)

    run_threads(n, ask)

    assert len(calls) == 1
    assert all(value is got[0] for value in got)


def test_an_exception_reaches_every_waiter_and_nothing_is_kept() -> None:
    n = 6
    cache = Cache(10 * MB)
    waiting = Waiting(n - 1)

    def fail() -> Any:
        raise ValueError("the model refused this image")

    compute, calls = blocked_compute(waiting, fail)
    raised: list[BaseException | None] = [None] * n

    def ask(i: int) -> None:
        try:
            cache.get_or_compute("key", compute, wait=waiting, poll=0.01)
        except ValueError as err:
            raised[i] = err

    run_threads(n, ask)

    assert len(calls) == 1
    assert all(isinstance(err, ValueError) and str(err) == "the model refused this image" for err in raised)
    assert "key" not in cache and cache.nbytes == 0
    assert cache.get_or_compute("key", lambda: "now it works") == "now it works"  # the error was not kept


class Stopped(BaseException):
    """Like Streamlit's StopException: a run stopped from outside, not a failure of the computation."""


def test_a_computation_stopped_by_its_own_caller_is_taken_over_by_a_waiter() -> None:
    n = 4
    cache = Cache(10 * MB)
    waiting = Waiting(n - 1)
    calls: list[int] = []
    value = object()

    def compute() -> object:
        calls.append(threading.get_ident())
        if len(calls) == 1:
            assert waiting.all_waiting.wait(TIMEOUT)
            raise Stopped  # the first caller's run was replaced
        return value

    outcome: dict[int, object] = {}

    def ask(i: int) -> None:
        try:
            outcome[i] = cache.get_or_compute("key", compute, wait=waiting, poll=0.01)
        except Stopped:
            outcome[i] = "stopped"

    run_threads(n, ask)

    assert len(calls) == 2 and calls[1] in waiting.threads  # a waiter computed the second time
    assert sorted(str(v) for v in outcome.values() if v is not value) == ["stopped"]
    assert sum(v is value for v in outcome.values()) == n - 1
    assert cache.get("key") is value


def test_a_waiter_may_stop_waiting_and_the_computation_goes_on() -> None:
    cache = Cache(10 * MB)
    started, release = threading.Event(), threading.Event()

    def compute() -> str:
        started.set()
        assert release.wait(TIMEOUT)
        return "done"

    leader = threading.Thread(target=cache.get_or_compute, args=("key", compute), daemon=True)
    leader.start()
    assert started.wait(TIMEOUT)

    def give_up() -> None:
        raise Stopped

    with pytest.raises(Stopped):
        cache.get_or_compute("key", lambda: pytest.fail("computed twice"), wait=give_up, poll=0.01)
    release.set()
    leader.join(TIMEOUT)
    assert cache.get("key") == "done"


def test_different_keys_compute_at_the_same_time() -> None:
    cache = Cache(10 * MB)
    started = {"a": threading.Event(), "b": threading.Event()}
    saw_other: dict[str, bool] = {}

    def compute(mine: str, other: str) -> str:
        started[mine].set()
        saw_other[mine] = started[other].wait(TIMEOUT)  # only true if the other computation runs meanwhile
        return mine

    def ask(i: int) -> None:
        mine, other = ("a", "b") if i == 0 else ("b", "a")
        cache.get_or_compute(mine, lambda: compute(mine, other))

    run_threads(2, ask)

    assert saw_other == {"a": True, "b": True}
    assert cache.get("a") == "a" and cache.get("b") == "b"


def test_a_computation_asking_for_its_own_key_is_refused_not_deadlocked() -> None:
    cache = Cache(MB)

    def compute() -> Any:
        return cache.get_or_compute("key", compute)

    with pytest.raises(RuntimeError, match="its own result"):
        cache.get_or_compute("key", compute)
    assert "key" not in cache


def test_the_module_imports_no_room_of_whylabel() -> None:
    source = Path(memory.__file__).read_text(encoding="utf-8")
    assert "whylabel" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
