"""Inter-process locks on an index directory (``fcntl.flock``; Linux and macOS).

* One writer at a time: every build (``qa index``, an upload or removal in the UI, the Ray
  driver) holds ``<index>/.write.lock`` from reading the corpus to switching ``CURRENT``
  and pruning, so a second writer starts from the first one's result instead of
  silently replacing it. Whoever holds the lock writes who they are into the file.
* Versions in use are kept: a process that opens a version holds a shared lock on its
  ``.readers.lock`` for as long as it has it open; pruning deletes a version only when it
  can take that lock exclusively, without waiting.

flock locks belong to an open file, so two threads of one process that each open the
lock file also exclude each other.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IndexBusyError

WRITE_LOCK = ".write.lock"
READERS_LOCK = ".readers.lock"


def to_stderr(message: str) -> None:
    print(f"qa: {message}", file=sys.stderr, flush=True)


def holder(index_dir: Path) -> str:
    """Who holds (or last held) the write lock, as its holder wrote it."""
    try:
        text = (Path(index_dir) / WRITE_LOCK).read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "another process"


@contextmanager
def write_lock(index_dir: str | Path, *, timeout: float | None = None, log: Callable[[str], None] = to_stderr) -> Iterator[None]:
    """Hold the index directory's write lock; wait for it (saying so once) while another
    writer has it. ``timeout`` in seconds (None: wait as long as it takes; 0: do not wait).

    Raises:
        IndexBusyError: still held by another writer after ``timeout`` seconds.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / WRITE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try(fd, fcntl.LOCK_EX):
            who = holder(index_dir)
            if timeout == 0:
                raise IndexBusyError(f"the index at {index_dir} is being updated by {who}: wait for it to finish, then run this again")
            log(f"the index at {index_dir} is being updated by {who}; waiting for it to finish")
            deadline = None if timeout is None else time.monotonic() + timeout
            while not _try(fd, fcntl.LOCK_EX):
                if deadline is not None and time.monotonic() > deadline:
                    raise IndexBusyError(
                        f"the index at {index_dir} is still being updated by {who} after {timeout:g} s: "
                        "wait for it to finish, then run this again"
                    )
                time.sleep(0.05)
        command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200]
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command}) since {time.strftime('%H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _try(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class ReaderLock:
    """A shared lock on one version directory, held while a process has it open."""

    def __init__(self, version_dir: Path) -> None:
        self.fd: int | None = None
        try:
            fd = os.open(Path(version_dir) / READERS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return  # a read-only index: nothing prunes it from here either
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a prune is deleting this version
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.release()


def remove_unused(version_dir: Path) -> bool:
    """Delete a version directory unless a process has it open; True when deleted."""
    try:
        fd = os.open(version_dir / READERS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        if not _try(fd, fcntl.LOCK_EX):
            return False  # open somewhere: kept for the next prune
        shutil.rmtree(version_dir, ignore_errors=True)
        return True
    finally:
        os.close(fd)
