"""Private, durable files: what the store and the journals write is readable by its owner only, and appears whole."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700


def fsync_replace(tmp: Path, dest: Path) -> None:
    """Make `tmp` private and durable, then rename it over `dest`: readers see the old file or the new one,
    never half."""
    with open(tmp, "rb") as f:
        os.fchmod(f.fileno(), PRIVATE_FILE)
        os.fsync(f.fileno())
    os.replace(tmp, dest)


def private_folder(path: Path) -> None:
    """Create a folder (and its missing parents) readable by its owner only; tighten it if it exists."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_FOLDER)


def fsync_folder(path: Path) -> None:
    """Make the names in a folder durable (a rename or a new link survives a crash)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
