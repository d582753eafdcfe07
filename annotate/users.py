"""Annotator accounts: salted scrypt password hashes stored in the campaign."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from campaign.store import Campaign
from data_schemas import Annotator, UserError, from_table, require_valid

_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 8
# Checked instead of a real hash when a name is unknown: the same scrypt work, and no password yields its digest.
_DECOY_HASH = f"scrypt${_N}${_R}${_P}${'00' * 16}${'00' * 64}"


def hash_password(password: str) -> str:
    """A salted scrypt hash in the form scrypt$n$r$p$salt_hex$hash_hex."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate.hex(), digest)


def annotators(campaign: Campaign) -> dict[str, Annotator]:
    """Every account of the campaign by name."""
    return {a.name: a for a in from_table(campaign.table("annotators"), Annotator)}


def add_annotator(campaign: Campaign, name: str, password: str, role: str = "annotator") -> Annotator:
    """Create an account, or reset the password and role of an existing one (re-enabling it)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password for {name!r} is shorter than {MIN_PASSWORD} characters; choose a longer one")
    existing = annotators(campaign).get(name)
    account = require_valid(
        Annotator(name=name, role=role, password_hash=hash_password(password), disabled=False,
                  **({"created_at": existing.created_at} if existing else {})),
        f"user {name!r}",
    )
    campaign.put_annotator(account)
    return account


def disable_annotator(campaign: Campaign, name: str) -> None:
    """Stop an account from logging in; its votes stay."""
    account = annotators(campaign).get(name)
    if account is None:
        raise UserError(f"no user {name!r} in {campaign.root}; see `annotate users list`")
    campaign.put_annotator(Annotator(name=account.name, role=account.role, password_hash=account.password_hash,
                                     disabled=True, created_at=account.created_at))


def authenticate(campaign: Campaign, name: str, password: str) -> Annotator | None:
    """The enabled account with this name and password, or None.

    Every answer costs one scrypt check, for unknown and disabled names too, so the time taken does not
    tell which names exist.
    """
    account = annotators(campaign).get(name)
    matches = password_matches(password, account.password_hash if account is not None else _DECOY_HASH)
    if account is None or account.disabled or not matches:
        return None
    return account
