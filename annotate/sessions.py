"""Who is logged in to a running server, and until when.

A session (a JSON-API token, or the cookie of a Gradio login) ends when it expires, when its account is
disabled, or when its password changes. `annotate users …` runs in another process and only publishes
the accounts table; the server notices a new snapshot within CHECK_EVERY_S seconds and ends the sessions
it no longer allows, so revoking an account needs no restart.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from annotate.users import annotators
from campaign.store import Campaign
from data_schemas import Annotator

CHECK_EVERY_S = 2.0


class Accounts:
    """The campaign's accounts as last published; re-read when the snapshot file changes, looked at most every
    `check_every` seconds."""

    def __init__(self, campaign: Campaign, check_every: float = CHECK_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.campaign, self.check_every, self._clock = campaign, check_every, clock
        self._path = campaign.root / "tables" / "annotators.parquet"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._accounts: dict[str, Annotator] = {}

    def current(self, fresh: bool = False) -> dict[str, Annotator]:
        """Every account by name, as of the latest snapshot: at most `check_every` seconds old, or looked up now
        when `fresh` (a login just read the accounts; an older copy might not know that account yet)."""
        with self._lock:
            now = self._clock()
            if fresh or now - self._checked >= self.check_every:
                self._checked = now
                stat = self._path.stat()
                # The snapshot is replaced by a rename, so a new inode or mtime means new accounts.
                stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                if stamp != self._stamp:
                    self._accounts, self._stamp = annotators(self.campaign), stamp
            return self._accounts

    def allows(self, name: str, password_hash: str) -> bool:
        """Whether a session opened with this password hash may go on: the account is enabled and unchanged."""
        account = self.current().get(name)
        return account is not None and not account.disabled and account.password_hash == password_hash


@dataclass(frozen=True)
class _Session:
    name: str
    password_hash: str  # the account's hash when the session began: a new password ends the session
    started: float


class Sessions:
    """JSON-API tokens issued here, and the Gradio logins of the same server, checked against `Accounts`."""

    def __init__(self, accounts: Accounts, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self.accounts, self.lifetime_s, self._clock = accounts, lifetime_s, clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Session] = {}
        self._gradio_tokens: dict[str, str] = {}  # Gradio's own cookie token → user name
        self._gradio_seen: dict[str, _Session] = {}
        self._swept = float("-inf")

    def issue(self, account: Annotator) -> str:
        """A new random token for a logged-in account."""
        token = secrets.token_urlsafe(32)
        self.accounts.current(fresh=True)
        with self._lock:
            self._tokens[token] = _Session(account.name, account.password_hash, self._clock())
        return token

    def user(self, token: str) -> str | None:
        """The user a token belongs to, or None when it is unknown, expired or revoked (then it is forgotten)."""
        with self._lock:
            session = self._tokens.get(token)
            if session is None:
                return None
            if self._ended(session):
                del self._tokens[token]
                return None
            return session.name

    def end(self, token: str) -> bool:
        """Log a token out; whether it was logged in."""
        with self._lock:
            return self._tokens.pop(token, None) is not None

    def follow_gradio(self, tokens: dict[str, str]) -> None:
        """Watch the Gradio app's cookie tokens (token → user), so `sweep` can end them too."""
        self._gradio_tokens = tokens

    def sweep(self) -> None:
        """End the Gradio sessions that expired or lost their account; does the work at most every
        CHECK_EVERY_S seconds, so it can run before every request."""
        with self._lock:
            now = self._clock()
            if now - self._swept < self.accounts.check_every:
                return
            self._swept = now
            current = self.accounts.current(fresh=not self._gradio_tokens.keys() <= self._gradio_seen.keys())
            for token, name in list(self._gradio_tokens.items()):
                session = self._gradio_seen.get(token)
                if session is None:  # a login since the last sweep: it starts with the account as it is now
                    account = current.get(name)
                    session = _Session(name, account.password_hash if account else "", now)
                    self._gradio_seen[token] = session
                if self._ended(session):
                    self._gradio_tokens.pop(token, None)
            for token in set(self._gradio_seen) - set(self._gradio_tokens):  # logged out or ended
                del self._gradio_seen[token]

    def _ended(self, session: _Session) -> bool:
        expired = self._clock() - session.started >= self.lifetime_s
        return expired or not self.accounts.allows(session.name, session.password_hash)
