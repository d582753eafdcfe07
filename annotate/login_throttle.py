"""Failed logins slow down the next ones, per account and per client address alike.

A few failures are free (typos); after that every failure doubles the wait before that account, or
that address, may try again, up to a ceiling. A success forgets the account's failures but not the
address's: one valid account must not let its owner go on guessing the passwords of others.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

FREE_FAILURES = 5
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 300.0
FORGET_AFTER_S = 900.0  # failures this old no longer count
MAX_ENTRIES = 10_000  # guesses at random names or from many addresses must not grow memory without end


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class LoginThrottle:
    """Counts failed logins by account and by address, and says how long a new attempt must wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, _Failures] = {}

    def wait(self, account: str, address: str) -> float:
        """Seconds before this account may be tried from this address; 0 when it may be tried now."""
        now = self._clock()
        with self._lock:
            return max(0.0, *(self._current(key, now).blocked_until - now for key in _keys(account, address)))

    def failed(self, account: str, address: str) -> None:
        """A wrong password (or an unknown name): count it against both, and block them once past the free ones."""
        now = self._clock()
        with self._lock:
            for key in _keys(account, address):
                entry = self._current(key, now)
                entry.count, entry.last = entry.count + 1, now
                if entry.count > FREE_FAILURES:
                    entry.blocked_until = now + min(FIRST_WAIT_S * 2 ** (entry.count - FREE_FAILURES - 1), MAX_WAIT_S)
                self._failures[key] = entry
            if len(self._failures) > MAX_ENTRIES:
                self._forget_oldest()

    def succeeded(self, account: str) -> None:
        """A good login: the account's failures are forgiven."""
        with self._lock:
            self._failures.pop(_keys(account, "")[0], None)

    def _current(self, key: str, now: float) -> _Failures:
        entry = self._failures.get(key)
        if entry is None or now - entry.last > FORGET_AFTER_S:
            return _Failures()
        return entry

    def _forget_oldest(self) -> None:
        survivors = sorted(self._failures.items(), key=lambda kv: kv[1].last)[-MAX_ENTRIES // 2:]
        self._failures = dict(survivors)


def _keys(account: str, address: str) -> tuple[str, str]:
    return f"account:{account}", f"address:{address}"
