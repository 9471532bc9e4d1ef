"""The embedded default source: a local Maildir, or a plain folder of ``.eml`` files.

Needs no server, so ``intake demo`` and a first try run anywhere. "Moving" a message puts it in
a sub-folder named after the target folder (``Intake/Accepted`` becomes ``Intake/Accepted/``
under the source folder for .eml folders, a Maildir sub-folder for Maildirs).
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from intake.sources.base import FetchedMail, SourceError


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


class LocalSource:
    """A :class:`~intake.sources.base.MailSource` over a local folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"local:{self.path.resolve()}"
        self._maildir: mailbox.Maildir | None = None

    def __enter__(self) -> LocalSource:
        if not self.path.is_dir():
            raise SourceError(f"open: {self.path} is not a folder")
        if _is_maildir(self.path):
            self._maildir = mailbox.Maildir(str(self.path), factory=None, create=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self._maildir = None

    def uidvalidity(self) -> int:
        return 1

    def list_uids(self) -> list[int | str]:
        if self._maildir is not None:
            # Maildir unique names start with the delivery time in seconds: sorting them is arrival order.
            return sorted(self._maildir.keys())
        # Hidden files (editor locks such as ".~lock.x.eml", partial copies) are not mail.
        files = [p for p in self.path.iterdir()
                 if p.is_file() and p.suffix.lower() == ".eml" and not p.name.startswith(".")]
        return [p.name for p in sorted(files, key=lambda p: (p.stat().st_mtime, p.name))]

    def _file(self, uid: int | str) -> Path:
        name = str(uid)
        if "/" in name or name.startswith("."):
            raise SourceError(f"fetch: bad message name {name!r}")
        return self.path / name

    def fetch(self, uids: Iterable[int | str], max_bytes: int) -> Iterator[FetchedMail]:
        for uid in uids:
            if self._maildir is not None:
                yield self._fetch_maildir(str(uid), max_bytes)
                continue
            path = self._file(uid)
            try:
                size = path.stat().st_size
                received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                if size > max_bytes:
                    with path.open("rb") as fh:
                        header = fh.read(65536).split(b"\n\n", 1)[0]
                    yield FetchedMail(uid=uid, raw=None, size=size, received=received, header=header)
                    continue
                yield FetchedMail(uid=uid, raw=path.read_bytes(), size=size, received=received)
            except OSError as exc:
                raise SourceError(f"fetch: cannot read {path.name} ({exc.strerror})") from None

    def _fetch_maildir(self, key: str, max_bytes: int) -> FetchedMail:
        assert self._maildir is not None
        try:
            raw = self._maildir.get_bytes(key)
            received = datetime.fromtimestamp(self._maildir.get_message(key).get_date(), UTC)
        except (OSError, KeyError) as exc:
            raise SourceError(f"fetch: cannot read {key} ({exc})") from None
        if len(raw) > max_bytes:
            return FetchedMail(uid=key, raw=None, size=len(raw), received=received,
                               header=raw[:65536].split(b"\n\n", 1)[0])
        return FetchedMail(uid=key, raw=raw, size=len(raw), received=received)

    def _target(self, folder: str) -> Path:
        parts = [p for p in folder.replace("\\", "/").split("/") if p and p not in (".", "..")]
        return self.path.joinpath(*parts)

    def move(self, uid: int | str, folder: str) -> None:
        if self._maildir is not None:
            name = "." + ".".join(p for p in folder.split("/") if p and p not in (".", ".."))
            sub = mailbox.Maildir(str(self.path / name), factory=None, create=True)
            try:
                sub.add(self._maildir.get_message(str(uid)))
                self._maildir.discard(str(uid))
            except (OSError, KeyError) as exc:
                raise SourceError(f"move: {uid} to {folder} failed ({exc})") from None
            return
        target = self._target(folder)
        try:
            target.mkdir(parents=True, exist_ok=True)
            os.replace(self._file(uid), target / str(uid))
        except OSError as exc:
            raise SourceError(f"move: {uid} to {folder} failed ({exc.strerror})") from None

    def delete(self, uid: int | str) -> None:
        try:
            if self._maildir is not None:
                self._maildir.discard(str(uid))
            else:
                self._file(uid).unlink(missing_ok=True)
        except OSError as exc:
            raise SourceError(f"delete: {uid} failed ({exc.strerror})") from None
