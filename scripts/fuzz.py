"""Mutation fuzzing of the intake path: fixture mails and forms, mangled, through ``decide`` and the poller.

Usage:  .venv/bin/python scripts/fuzz.py [--n 10000] [--seed 1] [--no-maildir] [--no-dovecot] [--forms-share 0.3]

Seeds are the fixture mails (``fixtures/mail/*.eml``, ``intake/demo_mail/*.eml``) and every fixture
form (``fixtures/forms/**``) attached to a request mail. Each mutated mail gets one to three
mutations: bit flips, truncation, header duplication, boundary and charset mangling, nesting in
another message, odd encoded-words and character references, and for forms, zip member mutation
(flipped bits in compressed data, the encryption flag, renamed or re-encoded parts with a DOCTYPE,
an image signature in front).

Every mail goes through :func:`intake.pipeline.decide`; the run counts decisions by reason code and
how many came from the last-resort handler (:func:`is_last_resort`). Unless
``--no-maildir`` is given, the same mails are then written to a local Maildir and read by the real
poller into a fresh store; unless ``--no-dovecot`` is given, they are also APPENDed to a throwaway
Dovecot on loopback (started as the IMAP tests start it) and read by the real IMAP poller into another
fresh store. Each poller pass reports how many stayed unread, were recorded, parked, or judged by the
last-resort handler, and how many polls died; the Dovecot pass also counts mails the server itself
refused at APPEND (not unread: they never reached the inbox). Only counts, codes and mutation names
are printed: nothing from the mails themselves. Exit status 1 when a mail reached the last-resort
handler, raised, or stayed unread, or a poll died.
"""

from __future__ import annotations

import argparse
import email.policy
import io
import logging
import random
import re
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SUBJECTS = ("MittVaccin – Behörighet", "MittVaccin – Behörighet avslut")
#: A generous per-mail bound: a safety net against hangs, not a speed figure.
MAX_SECONDS_PER_MAIL = 10.0


# --- seeds --------------------------------------------------------------------------------------


def seed_mails() -> list[tuple[str, bytes]]:
    """(name, raw) of every fixture and demo mail."""
    out = []
    for folder in (ROOT / "fixtures" / "mail", ROOT / "intake" / "demo_mail"):
        for path in sorted(folder.glob("*.eml")):
            out.append((f"{folder.name}/{path.name}", path.read_bytes()))
    return out


def seed_forms() -> list[tuple[str, bytes]]:
    """(relative name, bytes) of every fixture form."""
    base = ROOT / "fixtures" / "forms"
    return [(p.relative_to(base).as_posix(), p.read_bytes()) for p in sorted(base.glob("**/*"))
            if p.suffix in (".xlsx", ".docx")]


def form_mail(filename: str, data: bytes, subject: str, index: int) -> bytes:
    """A request mail carrying one form, as a mail client would write it (stdlib email, fixed values)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Eva Berg <eva.berg@halmstad.example.test>"
    msg["To"] = "mittvaccin@region.example.test"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 24 Nov 2026 08:30:00 +0100"
    msg["Message-ID"] = f"<fuzz-form-{index}@halmstad.example.test>"
    msg.set_content("Hej!\nSe bifogad blankett.\nEva, 035-13 10 00\n")
    ctype = XLSX if filename.endswith(".xlsx") else DOCX
    maintype, subtype = ctype.split("/", 1)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename.rsplit("/", 1)[-1])
    return msg.as_bytes()


# --- mail mutations ------------------------------------------------------------------------------

_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]*)"?', re.I)
_CHARSET = re.compile(rb'charset="?([^";\s]*)"?', re.I)
ODD_CHARSETS = (b"", b"x-klingon", b"idna", b"punycode", b"undefined", b"base64", b"hex", b"zlib", b"rot13",
                b"unicode_escape", b"raw_unicode_escape", b"utf-7", b"utf-16", b"utf-32", b"cp65001", b"mbcs",
                b"utf-8*sv", b"iso-8859-1'sv'", b"\xff\xfe", b"uu", b"bz2", b"quopri", b"utf_16_be", b"cp037",
                b"latin-1" * 40)


def bitflip(raw: bytes, rng: random.Random) -> bytes:
    buf = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        if buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def truncate(raw: bytes, rng: random.Random) -> bytes:
    return raw[: rng.randrange(len(raw) + 1)] if raw else raw


def dup_header(raw: bytes, rng: random.Random) -> bytes:
    lines = raw.split(b"\n")
    heads = [i for i, line in enumerate(lines) if re.match(rb"[A-Za-z-]+:", line)]
    if not heads:
        return raw
    i = rng.choice(heads)
    for _ in range(rng.choice((1, 1, 2, 50))):
        lines.insert(i, lines[i])
    return b"\n".join(lines)


def boundary_mangle(raw: bytes, rng: random.Random) -> bytes:
    found = list(_BOUNDARY.finditer(raw))
    if not found:
        return raw
    m = rng.choice(found)
    old = m.group(1)
    choice = rng.randrange(7)
    if choice == 6:
        label = rng.choice((b"undefined", b"idna", b"x-klingon", b"utf-8", b"iso-8859-1"))
        return raw[: m.start()] + b"boundary*=" + label + b"''" + old.replace(b"=", b"%3D") + raw[m.end():]
    if choice == 0:
        return raw[: m.start()] + b'boundary=""' + raw[m.end():]
    if choice == 1:
        return raw[: m.start()] + b"boundary=" + raw[m.end():]
    if choice == 2 and old:
        return raw.replace(b"--" + old, b"--" + old[:-1], rng.randint(1, 3))
    if choice == 3:
        return raw[: m.start()] + b'boundary="' + old * 20 + b'"' + raw[m.end():]
    if choice == 4 and old:
        return raw.replace(b"--" + old + b"--", b"")
    return raw[: m.start()] + b'boundary*0="' + old[:2] + b'"; boundary*1="' + old[2:] + b'"' + raw[m.end():]


def charset_mangle(raw: bytes, rng: random.Random) -> bytes:
    label = rng.choice(ODD_CHARSETS)
    found = list(_CHARSET.finditer(raw))
    if found and rng.random() < 0.6:
        m = rng.choice(found)
        return raw[: m.start()] + b'charset="' + label + b'"' + raw[m.end():]
    # An encoded-word with the odd label in the subject (or a new Subject header).
    word = b"=?" + label + b"?" + rng.choice((b"B?w6TDtg==", b"Q?=E4=F6", b"B?////", b"Q?=FF=FE=00")) + b"?="
    if re.search(rb"^Subject:", raw, re.M | re.I) and rng.random() < 0.7:
        return re.sub(rb"^(Subject:)", rb"\1 " + word.replace(b"\\", b"\\\\") + b" ", raw, count=1, flags=re.M | re.I)
    return b"Subject: " + word + b"\r\n" + raw


def nest(raw: bytes, rng: random.Random) -> bytes:
    depth = rng.choice((1, 1, 2, 5, 60))
    for level in range(depth):
        kind = rng.randrange(3)
        if kind == 0:
            raw = (b"From: Eva <eva.berg@halmstad.example.test>\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: message/rfc822\r\n\r\n" + raw)
        else:
            b = f"nest{level}".encode()
            raw = (b"From: Eva <eva.berg@halmstad.example.test>\r\nSubject: MittVaccin \xe2\x80\x93 Beh\xc3\xb6righet"
                   b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n--" + b
                   + b"\r\nContent-Type: message/rfc822\r\n\r\n" + raw + b"\r\n--" + b + b"--\r\n")
    return raw


def odd_text(raw: bytes, rng: random.Random) -> bytes:
    """Character references, encoded-words and 8-bit bytes where text goes."""
    piece = rng.choice((b"&#99999999999999999999;", b"&#x110000;", b"&#xD800;", b"&#0;", b"&#1114112;",
                        b"=?utf-8?q?=E2=80?=", b"=?utf-8?b?====?=", b"\xff\xfe\x00", b"=?=?=?", b"\x00" * 8,
                        b"<p>" * 500, b"&" * 1000 + b";"))
    pos = rng.randrange(len(raw) + 1)
    return raw[:pos] + piece + raw[pos:]


def cte_mangle(raw: bytes, rng: random.Random) -> bytes:
    value = rng.choice((b"base64", b"quoted-printable", b"x-uuencode", b"8bit", b"binary", b"bogus", b""))
    found = list(re.finditer(rb"Content-Transfer-Encoding:[^\r\n]*", raw, re.I))
    if not found:
        return raw.replace(b"\n\n", b"\nContent-Transfer-Encoding: " + value + b"\n\n", 1)
    m = rng.choice(found)
    return raw[: m.start()] + b"Content-Transfer-Encoding: " + value + raw[m.end():]


def ctype_mangle(raw: bytes, rng: random.Random) -> bytes:
    value = rng.choice((b"multipart/mixed", b"multipart/digest; boundary=\"x\"", b"message/rfc822",
                        b"message/partial; id=1; number=1", b"text/html; charset=\"utf-8\"", b"multipart/",
                        b"/", b"message/delivery-status", b"text/plain; format=flowed; delsp=yes"))
    found = list(re.finditer(rb"Content-Type:[^\r\n]*", raw, re.I))
    if not found:
        return raw
    m = rng.choice(found)
    return raw[: m.start()] + b"Content-Type: " + value + raw[m.end():]


MAIL_MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "bitflip": bitflip, "truncate": truncate, "dup_header": dup_header, "boundary": boundary_mangle,
    "charset": charset_mangle, "nest": nest, "odd_text": odd_text, "cte": cte_mangle, "ctype": ctype_mangle,
}


# --- form (zip) mutations ------------------------------------------------------------------------

_DOCTYPE = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]>'


def _rezip(members: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return out.getvalue()


def _members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i, zf.read(i)) for i in zf.infolist()]


def zip_bitflip(data: bytes, rng: random.Random) -> bytes:
    return bitflip(data, rng)


def zip_encrypt_flag(data: bytes, rng: random.Random) -> bytes:
    """Set the 'encrypted' flag on one member (local header and central directory)."""
    buf = bytearray(data)
    locals_ = [m.start() for m in re.finditer(rb"PK\x03\x04", data)]
    centrals = [m.start() for m in re.finditer(rb"PK\x01\x02", data)]
    if not locals_ or not centrals:
        return data
    k = rng.randrange(min(len(locals_), len(centrals)))
    buf[locals_[k] + 6] |= 1
    buf[centrals[k] + 8] |= 1
    return bytes(buf)


def zip_entity(data: bytes, rng: random.Random) -> bytes:
    """A DOCTYPE with an entity in one XML part, under an odd name and/or encoding."""
    members = _members(data)
    xml = [i for i, (info, _) in enumerate(members) if info.filename.endswith((".xml", ".rels"))]
    k = rng.choice(xml)
    info, body = members[k]
    text = body.decode("utf-8", "replace")
    decl, sep, rest = text.partition("?>")
    if not sep:
        decl, rest = "", text
    enc = rng.choice(("utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "iso-8859-1", "cp1252"))
    head = f'<?xml version="1.0" encoding="{enc.upper()}" standalone="yes"?>' if decl or rng.random() < 0.5 else ""
    new = (head + _DOCTYPE + rest).encode(enc, "xmlcharrefreplace")
    if rng.random() < 0.5:
        # Rename the part to a name that does not end in .xml; point the references at it.
        new_name = info.filename + rng.choice((".bin", "~", ".XmL ", "_", ".dat"))
        old_name = info.filename
        members = [(i, b.replace(old_name.rsplit("/", 1)[-1].encode(), new_name.rsplit("/", 1)[-1].encode()))
                   if i.filename.endswith((".xml", ".rels")) and j != k else (i, b)
                   for j, (i, b) in enumerate(members)]
        info = zipfile.ZipInfo(new_name, info.date_time)
    members[k] = (info, new)
    return _rezip(members)


def zip_image_prefix(data: bytes, rng: random.Random) -> bytes:
    sig = rng.choice((b"\x89PNG\r\n\x1a\n" + b"\x00" * 24, b"\xff\xd8\xff\xe0" + b"\x00" * 16, b"GIF89a" + b"\x00" * 10,
                      b"%PDF-1.4\n", b"MZ\x90\x00", b"BM" + b"\x00" * 12))
    return sig + data


def zip_member_mutate(data: bytes, rng: random.Random) -> bytes:
    """Change one member's bytes (truncated, flipped, emptied) and write a consistent zip again."""
    members = _members(data)
    k = rng.randrange(len(members))
    info, body = members[k]
    body = rng.choice((truncate, bitflip, odd_text, lambda b, r: b""))(body, rng)
    members[k] = (info, body)
    return _rezip(members)


FORM_MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "zip_bitflip": zip_bitflip, "zip_encrypted": zip_encrypt_flag, "zip_entity": zip_entity,
    "zip_image_prefix": zip_image_prefix, "zip_member": zip_member_mutate, "zip_truncate": truncate,
}


# --- the run -------------------------------------------------------------------------------------


def mutated_mails(n: int, seed: int, forms_share: float = 0.3) -> Iterator[tuple[str, bytes]]:
    """``n`` mutated mails as (label, raw); the label names the seed and the mutations, never content."""
    rng = random.Random(seed)
    mails, forms = seed_mails(), seed_forms()
    for i in range(n):
        if rng.random() < forms_share:
            name, data = rng.choice(forms)
            fmut = rng.choice(list(FORM_MUTATORS))
            data = FORM_MUTATORS[fmut](data, rng)
            raw = form_mail(name, data, rng.choice(SUBJECTS), i)
            label = [f"form:{name}", fmut]
            if rng.random() < 0.3:
                m = rng.choice(list(MAIL_MUTATORS))
                raw = MAIL_MUTATORS[m](raw, rng)
                label.append(m)
        else:
            name, raw = rng.choice(mails)
            label = [name]
            for _ in range(rng.choice((1, 1, 2, 3))):
                m = rng.choice(list(MAIL_MUTATORS))
                raw = MAIL_MUTATORS[m](raw, rng)
                label.append(m)
        yield "+".join(label), raw


def decide_all(mails: list[tuple[str, bytes]], report: Callable[[str], None] = print) -> dict[str, object]:
    """Run every mail through ``decide``; counts of reason codes, last-resort decisions and exceptions."""
    from intake.pipeline import Settings, decide
    from rules.packs import load_packs

    routines = load_packs(["mittvaccin"])
    settings = Settings(from_address="mittvaccin@region.example.test")
    codes: Counter[str] = Counter()
    last_resort: Counter[str] = Counter()
    raised: Counter[str] = Counter()
    slow: list[tuple[str, float]] = []
    slowest = 0.0
    for label, raw in mails:
        t0 = time.monotonic()
        try:
            d = decide(raw, routines, settings=settings)
        except Exception as exc:  # noqa: BLE001 - counted, the run goes on
            raised[f"{type(exc).__name__} ({label})"] += 1
            continue
        took = time.monotonic() - t0
        slowest = max(slowest, took)
        if took > MAX_SECONDS_PER_MAIL:
            slow.append((label, took))
        codes.update(d.codes or ["(none)"])
        if is_last_resort(d):
            detail = d.reasons[0].detail
            last_resort[f"{detail} ({label})"] += 1
    return {"codes": codes, "last_resort": last_resort, "raised": raised, "slow": slow, "slowest": slowest}


def _run_polls(config, store, routines, left: Callable[[], int]) -> dict[str, object]:
    """Up to three polls with the real poller: the poller may leave a mail for the next poll, never for ever.

    Counts polls, mails moved as already recorded (a mutation that left Message-ID and body as they were
    is the same mail delivered again), mails left by poll errors, and polls that died by exception type."""
    from intake.app import make_poller

    polls, seen, errors, already, failed_polls = 0, 0, 0, 0, Counter()
    for _ in range(3):
        polls += 1
        try:
            result = make_poller(config, store, routines).poll_once()
        except Exception as exc:  # noqa: BLE001 - a poll that dies is a finding, reported by its type
            failed_polls[type(exc).__name__] += 1
            continue
        seen += result.seen
        errors += len(result.errors)
        already += result.already_recorded
        if not left():
            break
    return {"polls": polls, "seen": seen, "already_recorded": already, "mails_left_by_poll_errors": errors,
            "polls_that_died": dict(failed_polls)}


def _store_counts(store) -> dict[str, int]:
    """Recorded mails, parked mails and decisions from a catch-all, read back from the store."""
    rows = store.db.execute("SELECT reasons FROM messages").fetchall()
    parked = store.db.execute("SELECT count(*) FROM parked WHERE parked_at IS NOT NULL").fetchone()[0]
    last_resort = sum(1 for (reasons,) in rows if reasons and _LAST_RESORT_JSON.search(reasons))
    return {"recorded": len(rows), "parked": parked, "last_resort": last_resort}


def poll_maildir(mails: list[tuple[str, bytes]]) -> dict[str, object]:
    """Write ``mails`` into a fresh Maildir and let the real poller read them into a fresh store."""
    import mailbox

    from intake import config as config_mod
    from intake.app import open_app

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="intake-fuzz-") as tmp:
        root = Path(tmp)
        box = mailbox.Maildir(str(root / "mailbox"), create=True)
        for _, raw in mails:
            box.add(raw)
        config = config_mod.from_mapping({
            "store": {"path": "intake.db"},
            "mailbox": {"kind": "local", "path": "mailbox"},
            "outbox": {"kind": "file", "dir": "outbox"},
            "replies": {"from_address": "mittvaccin@region.example.test"},
        }, base_dir=root)
        store, routines = open_app(config)

        def left() -> int:
            return len(mailbox.Maildir(str(root / "mailbox"), create=False).keys())

        polled = _run_polls(config, store, routines, left)
        unread = left()
        counts = _store_counts(store)
        store.db.conn.close()
    return {"unread": unread, **counts, **polled, "seconds": round(time.monotonic() - t0)}


#: Mails per MULTIAPPEND when loading Dovecot; a batch the server refuses is appended mail by mail.
APPEND_BATCH = 100


def _append_all(account, mails: list[tuple[str, bytes]]) -> list[str]:
    """APPEND ``mails`` to the account's INBOX in batches; returns the labels of mails the server refused.

    MULTIAPPEND is all or nothing, so a refused batch is appended again one mail at a time (on a fresh
    connection after each refusal: a server that answers BAD may have dropped the literal's framing)."""
    from imapclient.exceptions import IMAPClientError

    refused: list[str] = []
    client = account.client()
    try:
        for start in range(0, len(mails), APPEND_BATCH):
            batch = mails[start:start + APPEND_BATCH]
            try:
                response = client.multiappend("INBOX", [raw for _, raw in batch])
                # imapclient returns a NO to MULTIAPPEND (the whole batch refused) instead of raising.
                if not (isinstance(response, tuple) and response and response[0] != "OK"):
                    continue
            except (IMAPClientError, OSError):
                client = _reconnect(account, client)
            for label, raw in batch:
                try:
                    client.append("INBOX", raw)
                except (IMAPClientError, OSError):
                    refused.append(label)
                    client = _reconnect(account, client)
    finally:
        _close(client)
    return refused


def _reconnect(account, client):
    _close(client)
    return account.client()


def _close(client) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - a connection the server already dropped
        pass


def poll_dovecot(mails: list[tuple[str, bytes]]) -> dict[str, object]:
    """APPEND ``mails`` to a throwaway Dovecot (as the IMAP tests start it) and poll it with the real poller.

    ``refused_by_server`` counts mails Dovecot itself refused at APPEND (a mutation can make a message
    the server will not store); they never reach the inbox, so they are not counted as unread."""
    from intake import config as config_mod
    from intake.app import open_app
    from tests.dovecot import DovecotServer

    t0 = time.monotonic()
    server = DovecotServer()
    server.start()
    try:
        account = server.new_account()
        refused = _append_all(account, mails)
        with account.client() as client:
            in_inbox = len(client.select_folder("INBOX", readonly=True) and client.search("ALL"))
        with tempfile.TemporaryDirectory(prefix="intake-fuzz-") as tmp:
            root = Path(tmp)
            config = config_mod.from_mapping({
                "store": {"path": "intake.db"},
                "mailbox": {"kind": "imap", "host": server.host, "port": server.port, "username": account.username,
                            "password": account.password, "tls": "none", "allow_plaintext": True},
                "outbox": {"kind": "file", "dir": "outbox"},
                "replies": {"from_address": "mittvaccin@region.example.test"},
            }, base_dir=root)
            store, routines = open_app(config)

            def left() -> int:
                with account.client() as client:
                    client.select_folder("INBOX", readonly=True)
                    return len(client.search("ALL"))

            polled = _run_polls(config, store, routines, left)
            unread = left()
            counts = _store_counts(store)
            store.db.conn.close()
    finally:
        server.cleanup()
    return {"unread": unread, **counts, "refused_by_server": len(refused), "in_inbox_after_append": in_inbox, **polled,
            "seconds": round(time.monotonic() - t0), "_refused_labels": refused}


#: How the pipeline's catch-alls mark a decision (``mail.unparseable`` with this detail): a parser or rule
#: raised something nobody expected. A limit or a known defect has its own detail instead.
LAST_RESORT_PREFIXES = ("parser error:", "rule error:", "mail-parser error:", "header parser error:")
_LAST_RESORT_JSON = re.compile(r'"detail":\s*"(?:' + "|".join(re.escape(p) for p in LAST_RESORT_PREFIXES) + ")")


def is_last_resort(decision: object) -> bool:
    """True when ``decision`` came from a catch-all handler rather than a reason of its own."""
    reasons = getattr(decision, "reasons", ())
    return any(r.code == "mail.unparseable" and r.detail.startswith(LAST_RESORT_PREFIXES) for r in reasons)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--forms-share", type=float, default=0.3)
    ap.add_argument("--no-maildir", action="store_true", help="skip the poller run over a local Maildir")
    ap.add_argument("--no-dovecot", action="store_true", help="skip the poller run over a throwaway Dovecot")
    ap.add_argument("--verbose", action="store_true", help="list the seed and mutations of each failure")
    args = ap.parse_args(argv)
    verbose = args.verbose
    # Counts only: no library may echo a header or body value of the (test) mails to the terminal.
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("mailparser").disabled = True
    logging.disable(logging.ERROR)  # the app's log set-up passes library lines on (filtered); counts suffice here
    t0 = time.monotonic()
    mails = list(mutated_mails(args.n, args.seed, args.forms_share))
    n_forms = sum(1 for label, _ in mails if label.startswith("form:"))
    print(f"mutated mails: {len(mails)} ({n_forms} carrying a mutated form), seed {args.seed}")
    out = decide_all(mails)
    print(f"decide(): {sum(out['last_resort'].values())} last-resort, {sum(out['raised'].values())} raised, "
          f"{len(out['slow'])} over {MAX_SECONDS_PER_MAIL:g} s (slowest {out['slowest']:.1f} s)")
    print("reasons by count:")
    for code, count in out["codes"].most_common():
        print(f"  {count:6d}  {code}")
    for what in ("last_resort", "raised"):
        by_error: Counter[str] = Counter()
        for key, count in out[what].items():
            by_error[key.split(" (", 1)[0]] += count
        for key, count in by_error.most_common():
            print(f"  {what}: {count:5d} x {key}")
        if verbose:
            for key, count in out[what].most_common():
                print(f"    {count:5d} x {key}")
    failed = bool(out["last_resort"] or out["raised"] or out["slow"])
    print(f"decide() took {time.monotonic() - t0:.0f} s")
    if not args.no_maildir:
        polled = poll_maildir(mails)
        print("maildir poll: " + ", ".join(f"{k} {v}" for k, v in polled.items()))
        failed = failed or bool(polled["unread"] or polled["last_resort"] or polled["polls_that_died"])
    if not args.no_dovecot:
        polled = poll_dovecot(mails)
        refused_labels = polled.pop("_refused_labels")
        print("dovecot poll: " + ", ".join(f"{k} {v}" for k, v in polled.items()))
        if verbose:
            for label in refused_labels:
                print(f"    refused by the server: {label}")
        failed = failed or bool(polled["unread"] or polled["last_resort"] or polled["polls_that_died"])
    print(f"took {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
