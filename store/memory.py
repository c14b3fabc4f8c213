"""An in-memory cache bounded in bytes: least recently used entries go first, one computation per missing key.

`Cache(max_bytes)` keeps computed values for a server: `get_or_compute(key, compute)` returns the kept value or
computes it. It is safe to share between threads (Streamlit runs each session's script in its own thread):

- Bytes, not entries: each value's size is measured once, when it is kept (`size_of`), and the least recently
  used entries are dropped until the total is within `max_bytes`. A value larger than the whole bound is
  returned but not kept (keeping it would empty the cache for one entry).
- Single flight: when several threads ask for the same missing key at once, one computes and the others wait
  for its result. An exception of the computation (an `Exception`) reaches every waiter, and nothing is kept.
  A computation abandoned by its own caller (a `BaseException` that is not an `Exception`: a framework's stop
  or rerun signal, KeyboardInterrupt) says nothing about the value, so it is raised only in the thread that
  computed; the waiters start over, and one of them computes. Different keys compute at the same time.

Values are shared, not copied: whoever gets one must not change it (make arrays read-only before keeping them).

May import: the standard library, numpy and PIL; no room of whylabel (every server cache can use it).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import numpy as np
from PIL import Image

T = TypeVar("T")

SMALL = 64
"""Bytes counted for anything `size_of` does not look inside: a number, None, a short string's overhead, an object
it does not know (a function, a model shared by every entry), and each container's own overhead."""

_BAND_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
"""Bytes per band of the PIL modes wider than 8 bits; every other mode has one byte per band."""


def size_of(value: Any) -> int:
    """The bytes `value` holds, as the cache counts them: an estimate of its memory, exact for the large parts.

    - a numpy array: the `nbytes` of the array it keeps alive (a view counts its base, the whole of it);
    - a PIL image: width * height * bands (times 2 or 4 for the 16- and 32-bit modes);
    - bytes, bytearray, memoryview: their length; a string: its length plus `SMALL`;
    - a dict or other mapping (keys and values), list, tuple (a NamedTuple too), set, frozenset, and a
      dataclass instance (its fields): `SMALL` plus what they hold, counted the same way;
    - anything else (numbers, None, functions, other objects): `SMALL`, without looking inside.

    Each object counts once however often the value refers to it (two fields holding one array count it once),
    and cycles end. An array of dtype object counts its pointers only.
    """
    total, seen, stack = 0, set(), [value]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            base = item
            while isinstance(base.base, np.ndarray):
                base = base.base
            item = base
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, Image.Image):
            width, height = item.size
            total += width * height * len(item.getbands()) * _BAND_BYTES.get(item.mode, 1)
        elif isinstance(item, bytes | bytearray):
            total += len(item)
        elif isinstance(item, memoryview):
            total += item.nbytes
        elif isinstance(item, str):
            total += SMALL + len(item)
        elif isinstance(item, Mapping):
            total += SMALL
            for key, entry in item.items():
                stack.extend((key, entry))
        elif isinstance(item, list | tuple | set | frozenset):
            total += SMALL
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            total += SMALL
            stack.extend(getattr(item, f.name, None) for f in dataclasses.fields(item))
        else:
            total += SMALL
    return total


class _Flight:
    """One computation under way: who computes, and what the waiters get when it ends."""

    __slots__ = ("abandoned", "done", "error", "thread", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.thread = threading.get_ident()
        self.value: Any = None
        self.error: Exception | None = None
        self.abandoned = False


class Cache:
    """A thread-safe least-recently-used map from keys to computed values, bounded in bytes (module docstring).

    `max_bytes` bounds the sum of the kept values' `size` (default `size_of`); `max_entries`, if given, bounds
    their number as well. 0 bytes keeps nothing (every call computes, still one computation per key at a time).
    """

    def __init__(self, max_bytes: int, max_entries: int | None = None, size: Callable[[Any], int] = size_of) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an int of 0 or more, got {max_bytes!r}")
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1
        ):
            raise ValueError(f"max_entries must be a positive int or None, got {max_entries!r}")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()  # oldest first: value, bytes
        self._flights: dict[Hashable, _Flight] = {}
        self._nbytes = 0

    # ------------------------------------------------------------------------------------------ reading

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The kept value (now the most recently used), or `default`; never computes and never waits."""
        with self._lock:
            if key not in self._entries:
                return default
            self._entries.move_to_end(key)
            return self._entries[key][0]

    peek = get
    """The name the page's callers use (`ui.cache`)."""

    def __contains__(self, key: Hashable) -> bool:
        """Whether `key` is kept (its recency unchanged)."""
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        """The sum of the kept values' sizes: at most `max_bytes`."""
        with self._lock:
            return self._nbytes

    def items(self) -> list[tuple[Hashable, Any]]:
        """The kept keys and values, least recently used first (a snapshot; their recency unchanged)."""
        with self._lock:
            return [(key, value) for key, (value, _) in self._entries.items()]

    # ------------------------------------------------------------------------------------------ writing

    def get_or_compute(
        self,
        key: Hashable,
        compute: Callable[[], T],
        wait: Callable[[], None] | None = None,
        poll: float = 0.1,
    ) -> T:
        """The kept value of `key`, or `compute()`'s, kept; while another thread computes it, that one's.

        A thread waiting on another's computation calls `wait()` (if given) every `poll` seconds: it may raise
        to stop waiting (a page run that the user replaced), which leaves the computation running for the rest.
        """
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key][0]
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight()
                    break  # this thread computes
            if flight.thread == threading.get_ident():
                raise RuntimeError(f"the computation of {key!r} asked for its own result")
            if wait is None:
                flight.done.wait()
            else:
                while not flight.done.wait(poll):
                    wait()
            if flight.abandoned:
                continue  # its thread was stopped: start over (one of the waiters computes)
            if flight.error is not None:
                raise flight.error
            return flight.value
        return self._compute(key, flight, compute)

    def _compute(self, key: Hashable, flight: _Flight, compute: Callable[[], T]) -> T:
        try:
            value = compute()
        except Exception as err:
            flight.error = err
            raise
        except BaseException:
            flight.abandoned = True
            raise
        else:
            flight.value = value
            self.put(key, value)
            return value
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def put(self, key: Hashable, value: Any) -> bool:
        """Keep `value` under `key` (replacing what was there), dropping the least recently used entries until
        the total fits; False, and nothing kept under `key`, when the value alone is larger than `max_bytes`."""
        nbytes = self.size(value)
        with self._lock:
            if key in self._entries:
                self._nbytes -= self._entries.pop(key)[1]
            if nbytes > self.max_bytes:
                return False
            self._entries[key] = (value, nbytes)
            self._nbytes += nbytes
            while self._nbytes > self.max_bytes or (
                self.max_entries is not None and len(self._entries) > self.max_entries
            ):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._nbytes -= dropped
            return True

    def pop(self, key: Hashable, default: Any = None) -> Any:
        """Forget `key`; its value, or `default`."""
        with self._lock:
            if key not in self._entries:
                return default
            value, nbytes = self._entries.pop(key)
            self._nbytes -= nbytes
            return value

    def clear(self) -> None:
        """Forget every kept value (computations under way still end, and keep theirs)."""
        with self._lock:
            self._entries.clear()
            self._nbytes = 0
