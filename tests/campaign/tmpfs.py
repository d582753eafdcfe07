"""A small tmpfs for tests of a really full disk (CI runs as root); a test is skipped where mounting is not allowed."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


class SmallDisk:
    """A mounted tmpfs: fill it to the brim, give the room back, or grow it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.filler = folder / ".filler"

    def fill(self) -> None:
        """Write a filler file until not one more byte fits."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (b"\0" * (1 << 16), b"\0" * (1 << 12), b"\0"):  # big steps, then pages, then bytes
                while True:
                    try:
                        os.write(fd, chunk)  # unbuffered: nothing is kept to be written later
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def empty(self) -> None:
        """Give back the room the filler took."""
        self.filler.unlink(missing_ok=True)

    def resize(self, size: str) -> None:
        """Make the tmpfs this big (e.g. "1m")."""
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.folder)], check=True)


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[SmallDisk]:
    """Mount a tmpfs of `size` on `folder` (made if missing) for the duration; skips the test where that is
    not permitted (not root, no mount command, a container without the capability)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
                          capture_output=True, text=True) if mount else None
    if done is None or done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() if done else 'no mount command'}); "
                    "run as root to test a really full disk")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
