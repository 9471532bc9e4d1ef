"""One poller per database: an exclusive lock file, held for the life of the process."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from parsers.errors import IntakeError


class AlreadyRunningError(IntakeError, RuntimeError):
    """Another intake process holds the lock on this database."""


class InstanceLock:
    """``with InstanceLock(path):`` holds an exclusive, non-blocking lock; the OS drops it on death."""

    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunningError(
                f"another intake process (pid {holder}) is already running on {self.what}; "
                "stop it first or use another database"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
