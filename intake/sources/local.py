"""The embedded default source: a local Maildir, or a plain folder of ``.eml`` files.

Needs no server, so ``intake demo`` and a first try run anywhere. "Moving" a message puts it in
a sub-folder named after the target folder (``Intake/Accepted`` becomes ``Intake/Accepted/``
under the source folder for .eml folders, the Maildir++ sub-folder ``.Intake.Accepted`` for Maildirs).

The source reads bytes and file metadata only, never parses a mail (that happens later, after the
limits), and moves a mail by renaming its file: the bytes that arrived are the bytes that are kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from intake.sources.base import FetchedMail, SourceError, SourceUnavailable

#: How much of a mail over the size cap is read to find its header block.
HEADER_READ = 65536

_MAILDIR_TIME = re.compile(r"^(\d{9,11})\.")


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _header_of(data: bytes) -> bytes:
    """The header block of (the start of) a mail, blank line excluded."""
    for end in (data.find(b"\r\n\r\n"), data.find(b"\n\n")):
        if end >= 0:
            return data[:end]
    return data


class LocalSource:
    """A :class:`~intake.sources.base.MailSource` over a local folder.

    In a Maildir a message's uid is its unique name (the file name without the ``:2,flags`` info), found in
    ``new/`` or ``cur/``; in a folder of .eml files it is the file name.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"local:{self.path.resolve()}"
        self._maildir = False
        self._files: dict[str, Path] = {}

    def __enter__(self) -> LocalSource:
        if not self.path.is_dir():
            raise SourceUnavailable(f"open: {self.path} is not a folder")
        self._maildir = _is_maildir(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        self._files = {}

    def uidvalidity(self) -> int:
        return 1

    def list_uids(self) -> list[int | str]:
        try:
            if self._maildir:
                return self._list_maildir()
            # Hidden files (editor locks such as ".~lock.x.eml", partial copies) are not mail.
            files = [p for p in self.path.iterdir()
                     if p.is_file() and p.suffix.lower() == ".eml" and not p.name.startswith(".")]
            files.sort(key=lambda p: (p.stat().st_mtime, p.name))
        except OSError as exc:
            raise SourceUnavailable(f"list: cannot read {self.path} ({exc.strerror})") from None
        self._files = {p.name: p for p in files}
        return [p.name for p in files]

    def _list_maildir(self) -> list[int | str]:
        found: dict[str, Path] = {}
        for sub in ("new", "cur"):
            for entry in os.scandir(self.path / sub):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                found.setdefault(entry.name.split(":", 1)[0], Path(entry.path))
        self._files = found
        # Maildir unique names start with the delivery time in seconds: sorting them is arrival order.
        return sorted(found)

    def _file(self, uid: int | str) -> Path:
        name = str(uid)
        if "/" in name or "\\" in name or name.startswith(".") or name not in self._files:
            raise SourceError(f"no message {name!r} in {self.path.name} (list the folder first)")
        return self._files[name]

    def _received(self, uid: str, stat: os.stat_result) -> datetime:
        match = _MAILDIR_TIME.match(uid) if self._maildir else None
        return datetime.fromtimestamp(int(match.group(1)) if match else stat.st_mtime, UTC)

    def fetch(self, uids: Iterable[int | str], max_bytes: int) -> Iterator[FetchedMail]:
        """The bytes of each message (its header block only when over ``max_bytes``); a vanished file is skipped."""
        for uid in uids:
            path = self._file(uid)
            try:
                with path.open("rb") as fh:
                    stat = os.fstat(fh.fileno())
                    if stat.st_size > max_bytes:
                        header = _header_of(fh.read(HEADER_READ))
                        raw = None
                    else:
                        raw = fh.read()
                        header = b""
            except FileNotFoundError:
                continue  # taken by another program since the listing: nothing to do here
            except OSError as exc:
                raise SourceError(f"fetch: cannot read {path.name} ({exc.strerror})") from None
            yield FetchedMail(uid=str(uid), raw=raw, size=stat.st_size, received=self._received(str(uid), stat),
                              header=header)

    def _target(self, folder: str) -> Path:
        parts = [p for p in folder.replace("\\", "/").split("/") if p and p not in (".", "..")]
        if not parts:
            raise SourceError(f"move: bad folder name {folder!r}")
        if self._maildir:
            sub = self.path / ("." + ".".join(parts))
            for leaf in ("tmp", "new", "cur"):
                (sub / leaf).mkdir(parents=True, exist_ok=True)
            return sub
        target = self.path.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def move(self, uid: int | str, folder: str) -> None:
        path = self._file(uid)
        try:
            target = self._target(folder)
            if self._maildir:
                target = target / path.parent.name  # new/ stays new/, cur/ stays cur/ (with its flags)
            dest = target / path.name
            n = 1
            while not self._maildir and dest.exists():  # .eml names repeat; Maildir unique names do not
                dest = target / f"{path.stem}-{n}{path.suffix}"
                n += 1
            os.replace(path, dest)  # a rename: the same bytes, the same file
        except OSError as exc:
            raise SourceError(f"move: {uid} to {folder} failed ({exc.strerror})") from None
        del self._files[str(uid)]

    def delete(self, uid: int | str) -> None:
        path = self._file(uid)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise SourceError(f"delete: {uid} failed ({exc.strerror})") from None
        del self._files[str(uid)]

    def relocate(self, from_folder: str, message_id: str, to_folder: str | None) -> bool:
        """Move (to ``to_folder``) or delete (``None``) the mail with ``message_id`` in ``from_folder``;
        ``False`` when no such mail is there."""
        if not message_id:
            return False
        try:
            source = self._target(from_folder)
            files = [p for leaf in (("new", "cur") if self._maildir else (".",)) for p in (source / leaf).iterdir()
                     if p.is_file() and not p.name.startswith(".")]
            for path in files:
                with path.open("rb") as fh:
                    head = _header_of(fh.read(HEADER_READ))
                if not re.search(rb"(?im)^message-id:\s*" + re.escape(message_id.encode("ascii", "replace")), head):
                    continue
                if to_folder is None:
                    path.unlink(missing_ok=True)
                else:
                    target = self._target(to_folder) / (path.parent.name if self._maildir else "")
                    os.replace(path, target / path.name)
                return True
        except OSError as exc:
            raise SourceError(f"relocate: {from_folder} failed ({exc.strerror})") from None
        return False

    def holds(self, folder: str, message_id: str) -> bool | None:
        return None  # a local mailbox keeps no index by Message-ID; a rename cannot half-happen anyway
