"""The access register: who holds which access, since when, on whose order (the shell).

Done tickets feed it through :func:`apply_done_ticket` (the pure mapping is :mod:`rules.register`).
Person identifiers are kept only as a keyed hash (HMAC-SHA256, for exact lookup) beside a Fernet
ciphertext; names are encrypted too. The key lives in a file outside the database
(``register.key_file``), so a copy of the database alone shows no identifier or name. Every look at
entries of persons, every search by identifier and every export or correction is written to the audit
trail (ids and counts only). Entries of ended access are deleted ``register.retention_days`` after
they ended (:func:`purge_register`), independently of the ticket retention purge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from intake.errors import IntakeError
from intake.store import NotFoundError, Store
from intake.store.register import ENTRY_COLUMNS, RegisterFilters
from rules.register import (
    EntryChange,
    RegisterMapping,
    display_person,
    entries_from_ticket,
    load_register_mapping,
    normalise_person,
)

__all__ = ["RegisterError", "RegisterFilters", "RegisterKeys", "apply_done_ticket", "purge_register",
           "register_effect"]

log = logging.getLogger("intake.register")
KEY_CHECK = "key_check"
VIA = ("web", "cli")


class RegisterError(IntakeError, ValueError):
    """A register action that cannot be done: no key, a wrong key, a missing reason, an unknown entry."""


# -- keys --------------------------------------------------------------------------------------------


class RegisterKeys:
    """The two keys derived from the register's secret: one for the lookup hash, one for encryption."""

    def __init__(self, secret: bytes):
        if len(secret) < 32:
            raise RegisterError("register key: too short (need 32 random bytes)")
        self._mac = _derive(secret, b"intake-register/lookup-hmac")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"intake-register/fernet")))

    def lookup_hash(self, normalised: str) -> str:
        return hmac.new(self._mac, normalised.encode("utf-8"), hashlib.sha256).hexdigest()

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | None) -> str | None:
        if not token:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise RegisterError("register key: cannot decrypt (a different key file than the one used)") from None

    def check_value(self) -> str:
        """A value stored in the database to tell, at start, whether this is the key the data was written with."""
        return self.lookup_hash("intake-register-key-check")


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def init_key(path: Path) -> Path:
    """Create a new key file (32 random bytes, base64) readable by its owner only; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RegisterError(f"{path}: a key file exists already; it is never overwritten") from None
    with os.fdopen(fd, "w") as f:
        f.write(base64.urlsafe_b64encode(os.urandom(32)).decode("ascii") + "\n")
    os.chmod(path, 0o600)
    return path


def read_key(path: Path) -> RegisterKeys:
    try:
        text = path.read_text("ascii").strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise RegisterError(f"{path}: no register key file (create one with `intake register init-key`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegisterError(f"{path}: cannot read the register key ({type(exc).__name__})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s: the register key file is readable by others; chmod 600 it", path)
    try:
        secret = base64.urlsafe_b64decode(text)
    except ValueError:
        raise RegisterError(f"{path}: not a register key file") from None
    return RegisterKeys(secret)


def key_path(config: Any) -> Path:
    return config.path("register", "key_file")


def open_keys(store: Store, path: Path, *, create: bool = True) -> RegisterKeys:
    """The register's keys, checked against the database.

    A missing key file is created only while the register holds nobody (a fresh install): with entries
    present it means the key was lost or the path is wrong, and a new key would make every entry
    unreadable, so that is refused. A key that does not match the stored check value is refused too.
    """
    if not path.exists():
        if not create or store.register_person_count():
            raise RegisterError(f"{path}: no register key file, but the register holds entries: restore the key "
                                f"file or fix register.key_file")
        init_key(path)
        log.info("created the register key file %s", path)
    keys = read_key(path)
    stored = store.register_meta(KEY_CHECK)
    if stored is None:
        with store.transaction():
            store.set_register_meta(KEY_CHECK, keys.check_value())
    elif not hmac.compare_digest(stored, keys.check_value()):
        raise RegisterError(f"{path}: this is not the key the register was written with")
    return keys


def keys_for(config: Any, store: Store) -> RegisterKeys:
    if not config["register"]["enabled"]:
        raise RegisterError("the access register is turned off (register.enabled = false)")
    return open_keys(store, key_path(config))


# -- mappings ----------------------------------------------------------------------------------------

_MAPPINGS: dict[Path, RegisterMapping | None] = {}


def mapping_for(routine: Any) -> RegisterMapping | None:
    """The routine's register mapping (``register.toml``), loaded and checked once per pack folder."""
    path = Path(routine.path)
    if path not in _MAPPINGS:
        _MAPPINGS[path] = load_register_mapping(routine)
    return _MAPPINGS[path]


def check_mappings(routines: Iterable[Any]) -> dict[str, RegisterMapping]:
    """Load and check the register mapping of each routine (raises RegisterMappingError naming file and key)."""
    return {r.id: m for r in routines if (m := mapping_for(r)) is not None}


# -- feeding the register from done tickets ------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def apply_done_ticket(store: Store, ticket_ref: str, routines_by_id: dict[str, Any], now: datetime, actor: str,
                      *, keys: RegisterKeys) -> list[int]:
    """Write the register changes of one done ticket; returns the ids of the entries made or changed.

    Runs inside the caller's transaction (a savepoint; it never commits by itself). A ticket already
    applied changes nothing again (reopening and closing a ticket twice does not grant twice); a routine
    without ``register.toml`` or a ticket without a form changes nothing.
    """
    ticket = store.ticket(ticket_ref)
    routine = routines_by_id.get(ticket["routine"])
    mapping = mapping_for(routine) if routine is not None else None
    if mapping is None or not ticket["form"]:
        return []
    changes = entries_from_ticket(ticket, json.loads(ticket["form"]), mapping)
    if not changes:
        return []
    now_iso = _iso(now)
    touched: list[int] = []
    counts = {"granted": 0, "renewed": 0, "updated": 0, "ended": 0}
    with store.transaction():
        if store.register_ticket_applied(ticket["id"]):
            return []
        ctx = _Ctx(store, keys, ticket, mapping.routine, actor, now_iso, counts)
        updates: dict[tuple[int, str], list[EntryChange]] = {}
        for change in changes:
            person_id = ctx.person(change)
            if change.op == "grant":
                touched += ctx.grant(person_id, change)
            elif change.op == "end":
                touched += ctx.end(person_id, change)
            else:
                updates.setdefault((person_id, change.system), []).append(change)
        for (person_id, _system), group in updates.items():
            touched += ctx.change(person_id, group)
        store.add_event("register_applied", actor=actor, ticket_id=ticket["id"], at=now_iso,
                        data={**counts, "entries": len(set(touched))})
    return sorted(set(touched))


def register_effect(config: Any, routines: Iterable[Any] = ()) -> Callable[..., list[int]] | None:
    """The "done" effect for the engine: ``effect(store, ref, routines_by_id, now, actor) -> entry ids``.

    None when ``register.enabled`` is false. The ``register.toml`` of every routine given is loaded and
    checked now, so a bad mapping stops start-up (naming file and key) instead of failing a handler's
    "done". The key is read (and checked) on each call, on the store the caller hands in, so the effect
    runs in the caller's transaction.
    """
    if not config["register"]["enabled"]:
        return None
    check_mappings(routines)
    path = key_path(config)

    def effect(store: Store, ticket_ref: str, routines_by_id: dict[str, Any], now: datetime,
               actor: str) -> list[int]:
        return apply_done_ticket(store, ticket_ref, routines_by_id, now, actor, keys=open_keys(store, path))

    return effect


@dataclass
class _Ctx:
    store: Store
    keys: RegisterKeys
    ticket: dict[str, Any]
    routine: str
    actor: str
    now_iso: str
    counts: dict[str, int]

    def person(self, change: EntryChange) -> int:
        return person_id_for(self.store, self.keys, change.person, change.person_kind, change.name, self.now_iso)

    def _history(self, entry_id: int, op: str, changed: list[str] | None = None) -> None:
        self.store.register_add_history(entry_id, op, self.now_iso, self.actor, ticket_id=self.ticket["id"],
                                        ticket_ref=self.ticket["ref"], changes=changed)
        self.counts[op] = self.counts.get(op, 0) + 1

    def _values(self, change: EntryChange) -> dict[str, Any]:
        return {"unit": change.unit, "unit_hsa_id": change.unit_hsa_id, "municipality": change.municipality,
                "orderer_email": change.orderer_email, "orderer_name": change.orderer_name,
                "attestant_email": change.attestant_email, "attestant_name": change.attestant_name}

    def _insert(self, person_id: int, change: EntryChange) -> int:
        entry_id = self.store.register_add_entry({
            "person_id": person_id, "routine": self.routine, "system": change.system, "role": change.role,
            **self._values(change), "valid_from": change.valid_from, "valid_to": change.valid_to,
            "state": "active", "ended_on": None, "source": "ticket", "created_at": self.now_iso,
            "updated_at": self.now_iso,
        })
        self._history(entry_id, "granted")
        return entry_id

    def _refresh(self, entry: dict[str, Any], change: EntryChange, op: str) -> int:
        new = {k: v for k, v in self._values(change).items() if v is not None}
        new["valid_to"] = change.valid_to  # a renewal sets the new period (or none: open-ended)
        changed = sorted(k for k, v in new.items() if entry.get(k) != v)
        self.store.register_update_entry(entry["id"], {**new, "updated_at": self.now_iso})
        self._history(entry["id"], op, changed)
        return entry["id"]

    def grant(self, person_id: int, change: EntryChange) -> list[int]:
        held = self.store.register_active(person_id, change.system, change.role, any_role=False)
        if held:
            return [self._refresh(held[0], change, "renewed")]
        return [self._insert(person_id, change)]

    def end(self, person_id: int, change: EntryChange) -> list[int]:
        held = self.store.register_active(person_id, change.system, change.role, any_role=change.role is None)
        for entry in held:
            self.store.register_update_entry(entry["id"], {"state": "ended", "ended_on": change.valid_to,
                                                           "updated_at": self.now_iso})
            self._history(entry["id"], "ended", ["state", "ended_on"])
        return [e["id"] for e in held]

    def change(self, person_id: int, group: list[EntryChange]) -> list[int]:
        """A change order: the roles it names are the person's new set in that system."""
        first = group[0]
        held = self.store.register_active(person_id, first.system)
        if all(c.role is None for c in group):
            if not held:
                return [self._insert(person_id, first)]
            return [self._refresh(e, first, "updated") for e in held]
        wanted = {(c.role or "").casefold(): c for c in group}
        touched = []
        for entry in held:
            change = wanted.pop((entry["role"] or "").casefold(), None)
            if change is not None:
                touched.append(self._refresh(entry, change, "updated"))
            else:
                self.store.register_update_entry(entry["id"], {"state": "ended", "ended_on": first.valid_from,
                                                               "updated_at": self.now_iso})
                self._history(entry["id"], "ended", ["state", "ended_on"])
                touched.append(entry["id"])
        for change in wanted.values():
            touched.append(self._insert(person_id, change))
        return touched


def person_id_for(store: Store, keys: RegisterKeys, normalised: str, kind: str, name: str | None,
                  now_iso: str) -> int:
    """The register person with this identifier, created (encrypted) when new; a newer name replaces the old."""
    id_hash = keys.lookup_hash(normalised)
    row = store.register_person_by_hash(id_hash)
    if row is None:
        return store.register_add_person(id_hash, kind, keys.encrypt(normalised),
                                         keys.encrypt(name) if name else None, now_iso)
    if name and keys.decrypt(row["name_enc"]) != name:
        store.register_set_person_name(row["id"], keys.encrypt(name))
    return row["id"]


# -- looking (every look is audited) --------------------------------------------------------------------


def _plain(keys: RegisterKeys, row: dict[str, Any]) -> dict[str, Any]:
    """An entry row with the person's identifier and name decrypted (for a screen or an export)."""
    out = {k: v for k, v in row.items() if k not in ("id_enc", "name_enc")}
    normalised = keys.decrypt(row.get("id_enc")) or ""
    out["person"] = display_person(normalised, row.get("id_kind") or "")
    out["name"] = keys.decrypt(row.get("name_enc")) or ""
    return out


def find_person(store: Store, keys: RegisterKeys, identifier: str, actor: str, *, via: str = "web"
                ) -> int | None:
    """The register person with exactly this identifier (personnummer in any usual writing, or HSA-id).

    The search is audited whether or not it finds someone; the identifier itself is never written.
    """
    norm = normalise_person(identifier)
    row = store.register_person_by_hash(keys.lookup_hash(norm[0])) if norm else None
    with store.transaction():
        store.add_event("register_searched", actor=actor,
                        data={"by": "person", "found": int(row is not None), "via": via,
                              **({"person": row["id"]} if row else {})})
    return row["id"] if row else None


def person_view(store: Store, keys: RegisterKeys, person_id: int, actor: str, *, via: str = "web",
                today: date | None = None) -> dict[str, Any]:
    """A person's current and past access, with each entry's history (the view is audited)."""
    today_iso = (today or date.today()).isoformat()
    person = store.register_person(person_id)
    rows = [_plain(keys, r) for r in store.register_entries(RegisterFilters(person_id=person_id, state="all"),
                                                            today_iso)]
    history: dict[int, list[dict[str, Any]]] = {}
    for h in store.register_history_of([r["id"] for r in rows]):
        history.setdefault(h["entry_id"], []).append(h)
    current = [r for r in rows if _is_current(r, today_iso)]
    past = [r for r in rows if not _is_current(r, today_iso)]
    with store.transaction():
        store.add_event("register_viewed", actor=actor,
                        data={"person": person_id, "entries": len(rows), "via": via})
    normalised = keys.decrypt(person["id_enc"]) or ""
    return {"id": person_id, "person": display_person(normalised, person["id_kind"]), "kind": person["id_kind"],
            "name": keys.decrypt(person["name_enc"]) or "", "current": current, "past": past, "history": history}


def _is_current(row: dict[str, Any], today_iso: str) -> bool:
    return row["state"] == "active" or (row["ended_on"] or "") >= today_iso


def list_entries(store: Store, keys: RegisterKeys, filters: RegisterFilters, actor: str, *, what: str = "search",
                 via: str = "web", today: date | None = None) -> list[dict[str, Any]]:
    """Entries matching ``filters``, decrypted; the listing is audited with its size and the filter names."""
    rows = store.register_entries(filters, (today or date.today()).isoformat())
    with store.transaction():
        store.add_event("register_listed", actor=actor,
                        data={"what": what, "filters": filters.given(), "entries": len(rows), "via": via})
    return [_plain(keys, r) for r in rows]


def followup(store: Store, keys: RegisterKeys, routines_by_id: dict[str, Any], actor: str, *, days: int = 30,
             via: str = "web", today: date | None = None) -> dict[str, list[dict[str, Any]]]:
    """The follow-up lists: access ending within ``days``, fixed periods passed and never renewed, and
    access whose termination is pending (an open termination ticket names the same person and system)."""
    today = today or date.today()
    ending = store.register_ending_between(today.isoformat(), (today + timedelta(days=days)).isoformat())
    expired = store.register_expired_unrenewed(today.isoformat())
    pending = _termination_pending(store, keys, routines_by_id)
    with store.transaction():
        store.add_event("register_listed", actor=actor,
                        data={"what": "followup", "days": days, "via": via,
                              "entries": len(ending) + len(expired) + len(pending)})
    return {"ending": [_plain(keys, r) for r in ending], "expired": [_plain(keys, r) for r in expired],
            "pending": [_plain(keys, r) for r in pending]}


def _termination_pending(store: Store, keys: RegisterKeys, routines_by_id: dict[str, Any]) -> list[dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for routine in routines_by_id.values():
        mapping = mapping_for(routine)
        if mapping is None:
            continue
        for ticket in store.open_tickets_of(routine.id, sorted(mapping.request_types_that("end"))):
            try:
                form = json.loads(ticket["form"])
            except ValueError:
                continue
            for change in entries_from_ticket(ticket, form, mapping):
                if change.op != "end":
                    continue
                person = store.register_person_by_hash(keys.lookup_hash(change.person))
                if person is None:
                    continue
                for entry in store.register_active(person["id"], change.system, change.role,
                                                   any_role=change.role is None):
                    row = store.register_entry(entry["id"])
                    found.setdefault(entry["id"], dict(row, pending_ref=ticket["ref"]))
    return list(found.values())


# -- manual corrections (admins; a reason is required) ---------------------------------------------------


def _need_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RegisterError("a reason is required for a manual correction")
    return reason[:2000]


def add_manual(store: Store, keys: RegisterKeys, *, person: str, name: str | None, system: str,
               role: str | None = None, unit: str | None = None, unit_hsa_id: str | None = None,
               municipality: str | None = None, valid_from: str | None = None, valid_to: str | None = None,
               orderer_email: str | None = None, orderer_name: str | None = None, actor: str, reason: str,
               now: datetime | None = None) -> int:
    """An entry made outside the bot (e.g. access granted before the register existed)."""
    reason = _need_reason(reason)
    norm = normalise_person(person)
    if norm is None or not (system or "").strip():
        raise RegisterError("a person identifier and a system are required")
    now_iso = _iso(now or datetime.now(UTC))
    with store.transaction():
        person_id = person_id_for(store, keys, norm[0], norm[1], (name or "").strip() or None, now_iso)
        if store.register_active(person_id, system.strip(), _blank(role), any_role=False):
            raise RegisterError("the person already holds that role in that system; correct that entry instead")
        entry_id = store.register_add_entry({
            "person_id": person_id, "routine": None, "system": system.strip(), "role": _blank(role),
            "unit": _blank(unit), "unit_hsa_id": _blank(unit_hsa_id), "municipality": _blank(municipality),
            "valid_from": _day(valid_from) or (now or datetime.now(UTC)).date().isoformat(),
            "valid_to": _day(valid_to), "state": "active", "ended_on": None,
            "orderer_email": (_blank(orderer_email) or "").lower() or None, "orderer_name": _blank(orderer_name),
            "source": "manual", "created_at": now_iso, "updated_at": now_iso,
        })
        store.register_add_history(entry_id, "added_manually", now_iso, actor, reason=reason)
        store.add_event("register_corrected", actor=actor, at=now_iso,
                        data={"entry": entry_id, "op": "added_manually"})
    return entry_id


def end_entry(store: Store, entry_id: int, *, on: str | None, actor: str, reason: str,
              now: datetime | None = None) -> None:
    """End an entry by hand (e.g. access ended outside the bot, or an entry made by mistake)."""
    reason = _need_reason(reason)
    now_iso = _iso(now or datetime.now(UTC))
    with store.transaction():
        entry = store.register_entry(entry_id)
        if entry["state"] == "ended":
            raise RegisterError(f"register entry {entry_id} has ended already")
        store.register_update_entry(entry_id, {"state": "ended", "updated_at": now_iso,
                                               "ended_on": _day(on) or (now or datetime.now(UTC)).date().isoformat()})
        store.register_add_history(entry_id, "ended_manually", now_iso, actor, reason=reason,
                                   changes=["state", "ended_on"])
        store.add_event("register_corrected", actor=actor, at=now_iso, data={"entry": entry_id, "op": "ended"})


def correct_entry(store: Store, entry_id: int, changes: dict[str, Any], *, actor: str, reason: str,
                  now: datetime | None = None) -> list[str]:
    """Correct columns of an entry (a mistaken role, unit or date); returns the names of those changed."""
    reason = _need_reason(reason)
    unknown = sorted(set(changes) - set(ENTRY_COLUMNS))
    if unknown:
        raise RegisterError(f"cannot correct {unknown[0]}")
    now_iso = _iso(now or datetime.now(UTC))
    with store.transaction():
        entry = store.register_entry(entry_id)
        new = {}
        for column, value in changes.items():
            value = _day(value) if column in ("valid_from", "valid_to") and _blank(value) else _blank(value)
            if column == "system" and not value:
                raise RegisterError("the system cannot be empty")
            if entry[column] != value:
                new[column] = value
        if not new:
            return []
        store.register_update_entry(entry_id, {**new, "updated_at": now_iso})
        store.register_add_history(entry_id, "corrected", now_iso, actor, reason=reason, changes=sorted(new))
        store.add_event("register_corrected", actor=actor, at=now_iso,
                        data={"entry": entry_id, "op": "corrected", "changes": sorted(new)})
    return sorted(new)


def _blank(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _day(value: Any) -> str | None:
    text = _blank(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise RegisterError("dates are written YYYY-MM-DD") from None


# -- export --------------------------------------------------------------------------------------------

EXPORT_COLUMNS = ("person", "name", "system", "role", "unit", "unit_hsa_id", "municipality", "valid_from",
                  "valid_to", "state", "ended_on", "orderer_name", "orderer_email", "attestant_name",
                  "attestant_email", "source")


def export_xlsx(rows: list[dict[str, Any]], headers: dict[str, str] | None = None,
                values: dict[str, dict[str, str]] | None = None) -> bytes:
    """The entry rows (already decrypted) as an .xlsx workbook; ``headers`` gives the column titles and
    ``values`` the words for coded columns (``{"state": {"active": ...}}``)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Register"
    ws.append([(headers or {}).get(c, c) for c in EXPORT_COLUMNS])
    for row in rows:
        ws.append([(values or {}).get(c, {}).get(row.get(c), row.get(c)) for c in EXPORT_COLUMNS])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text from a form never becomes a formula in Excel
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export_entries(store: Store, keys: RegisterKeys, filters: RegisterFilters, actor: str, *, via: str = "web",
                   today: date | None = None, headers: dict[str, str] | None = None,
                   values: dict[str, dict[str, str]] | None = None) -> tuple[bytes, int]:
    """The filtered entries as .xlsx bytes and their count; the export is audited."""
    rows = store.register_entries(filters, (today or date.today()).isoformat())
    with store.transaction():
        store.add_event("register_exported", actor=actor,
                        data={"filters": filters.given(), "entries": len(rows), "via": via})
    return export_xlsx([_plain(keys, r) for r in rows], headers, values), len(rows)


# -- retention -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterPurgeResult:
    entries: int
    persons: int

    def summary(self) -> str:
        return f"{self.entries} ended register entries purged, {self.persons} persons removed"


def purge_register(store: Store, days: int, now: datetime | None = None) -> RegisterPurgeResult:
    """Delete entries whose access ended more than ``days`` ago (with their history), and persons left
    without entries. Active entries stay, however old: the access still exists."""
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=days)).date().isoformat()
    with store.transaction():
        entries, persons = store.register_purge_ended(cutoff)
        store.add_event("register_purged", actor="bot", at=_iso(now),
                        data={"entries": entries, "persons": persons, "days": days})
    return RegisterPurgeResult(entries, persons)


def purge_register_job(config: Any) -> Callable[[], RegisterPurgeResult] | None:
    """The daily register retention job for ``intake run`` (None when the register is off)."""
    if not config["register"]["enabled"]:
        return None

    def job() -> RegisterPurgeResult:
        from intake.store import open_store

        store = open_store(config.db_path)
        try:
            return purge_register(store, config["register"]["retention_days"])
        finally:
            store.db.conn.close()

    return job


def require_entry_or_none(store: Store, entry_id: int) -> dict[str, Any] | None:
    """The entry (without decrypting anything), or None when there is no such entry."""
    try:
        return store.register_entry(entry_id)
    except NotFoundError:
        return None
