"""Is intake flat in the size of its history? The same operations on a store of 1k and of 100k tickets.

    .venv/bin/python benchmarks/bench_history.py [--sizes 1000,100000] [--repeat 5]

For each size a store is built in a temporary folder: the schema from the store's own migrations, then
bulk inserts straight into SQLite (the kept counters of migration ``015_counters`` are kept by its triggers
during these inserts, as for any other writer; the build checks them against a fresh count) with a realistic
spread: three years of tickets, all closed and most
purged but for the newest 60, which are open in every size; several queues, request types and routines;
a requester pool; follow-up and rejected mail; acks, rejections and completion mails in the outbox;
events per ticket; forms, stored mail and attachments kept only for tickets not yet purged; exactly 100
tickets due for purging.
Then it times each operation, median of ``--repeat`` runs after a warm-up run, the runs interleaved across
the sizes so that load from elsewhere on the machine falls on every size alike:

- recording one mail: the Recorder's transaction (message, ticket, events, rate-limit lookup, reply)
  for a requester with history, and the per-sender rate-limit query alone;
- ``intake queue list --limit 50`` as its own process (falls back to the store call the CLI makes, with a
  note, while the CLI has no ``--limit``);
- the web UI through Flask's test client, signed in: queue page, ticket list first and last page, one
  ticket, the overview, and the mail list;
- the retention purge of the 100 due tickets (once per size: it changes the store).

It prints milliseconds per size and the ratio of the largest size to the smallest (target <= 1.5x).
Figures only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake import config as config_mod  # noqa: E402
from intake.store import open_store  # noqa: E402
from rules.packs import available_packs, load_packs  # noqa: E402

SEED = 4242
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
YEARS = 3
OPEN_TICKETS = 60  # new, in progress or waiting, in every size
RETENTION_DAYS = 90
DUE_FOR_PURGE = 100
PASSWORD = "bench-losenord-som-ar-langt"
FORM_JSON = json.dumps({"kind": "nyupplagg", "fields": {"kommun": "Falun", "enhet": "Hemsjukvården Söder"},
                        "users": [{"fornamn": "Tolvan", "efternamn": "Tolvansson", "identitet": "19121212-1212"}]},
                       ensure_ascii=False)
RAW_MAIL = (b"From: x@falun.example.test\r\nSubject: MittVaccin - Behorighet\r\n\r\n" + b"Hej! " * 600)
ATTACHMENT = bytes(random.Random(1).randbytes(9000))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# -- building a store ---------------------------------------------------------------------------------


def build_store(path: Path, n: int, routines) -> dict:
    """``n`` tickets of history in a fresh store at ``path``; returns names the timings need."""
    open_store(path).db.conn.close()  # the schema, by the store's own migrations
    rng = random.Random(SEED)
    conn = sqlite3.connect(path)
    conn.execute("pragma synchronous = off")
    slots = []  # (routine id, request type, queue, ref prefix)
    for i, r in enumerate(routines):
        for rt in r.request_types:
            slots.extend([(r.id, rt.id, rt.queue, r.ref_prefix)] * (8 if i == 0 else 1))
    requesters = [f"person{k}@{['falun', 'kalmar', 'umea', 'boras', 'vaxjo'][k % 5]}.example.test"
                  for k in range(max(50, n // 20))]
    handlers = ["anna", "bertil", "cecilia", "david", None]
    span = timedelta(days=365 * YEARS).total_seconds()
    start = NOW - timedelta(days=365 * YEARS)
    cutoff = NOW - timedelta(days=RETENTION_DAYS)
    tickets, messages, outbox, events, atts, notes = [], [], [], [], [], []
    counters: dict[tuple[str, int], int] = {}
    # The oldest-closed unpurged tickets: exactly DUE_FOR_PURGE of them are past retention.
    due = set(rng.sample(range(int(n * 0.5)), DUE_FOR_PURGE))
    msg_id = out_id = 0
    for t in range(1, n + 1):
        created = start + timedelta(seconds=span * (t - 1) / n + rng.random() * 60)
        routine, rtype, queue, prefix = rng.choice(slots)
        counters[(prefix, created.year)] = counters.get((prefix, created.year), 0) + 1
        ref = f"{prefix}-{created.year}-{counters[(prefix, created.year)]:04d}"
        requester = rng.choice(requesters[: max(10, len(requesters) // 4)] if rng.random() < 0.5 else requesters)
        # The desk's open work is the same whatever the length of its history: the newest tickets.
        status = rng.choice(["new", "in_progress", "waiting"]) if t > n - OPEN_TICKETS else (
            "rejected" if rng.random() < 0.1 else "done")
        closed = iso(created + timedelta(hours=rng.uniform(1, 96))) if status in ("done", "rejected") else None
        purged = None
        if closed and closed < iso(cutoff) and t - 1 not in due:
            purged = iso(datetime.fromisoformat(closed) + timedelta(days=RETENTION_DAYS + 1))
        kept = purged is None
        tickets.append((t, ref, routine, rtype, queue, status, requester, f"MittVaccin – {rtype}",
                        FORM_JSON if kept else None, 1, rng.choice(handlers), iso(created),
                        closed or iso(created + timedelta(hours=1)), closed, purged))
        for k in range(1 + (rng.random() < 0.2)):
            msg_id += 1
            at = iso(created + timedelta(minutes=30 * k))
            messages.append((msg_id, f"<h{msg_id}@falun.example.test>", f"<h{msg_id}@falun.example.test>", "imap",
                             1, str(msg_id), requester, "MittVaccin – Behörighet", "accepted", "[]", routine, rtype,
                             t, 3000, at, at, "Intake/Accepted", RAW_MAIL if kept else None, at))
            events.append((at, t, msg_id, "bot", "received", '{"verdict": "accepted"}'))
        first_msg = msg_id - k
        events.append((iso(created), t, first_msg, "bot", "ticket_created", json.dumps({"ref": ref})))
        for kind, when in [("ack", created)] + ([("completion", datetime.fromisoformat(closed))]
                                                if status == "done" else []):
            out_id += 1
            to = requester.upper() if rng.random() < 0.1 else requester
            outbox.append((out_id, first_msg, t, kind, to, "SV: MittVaccin", "Hej! Ärendet ..." * 20,
                           f"<r{out_id}@bot.example.test>", "sent", 1, iso(when), iso(when), iso(when)))
            events.append((iso(when), t, first_msg, "bot", "reply_queued", json.dumps({"kind": kind})))
        if status != "new":
            events.append((iso(created + timedelta(minutes=90)), t, None, "anna", "status_changed",
                           json.dumps({"from": "new", "to": status})))
        events.append((iso(created + timedelta(minutes=95)), t, None, "anna", "viewed", '{"what": "ticket"}'))
        if kept:
            atts.append((t, "Blankett.xlsx", "application/octet-stream", len(ATTACHMENT), ATTACHMENT))
        if rng.random() < 0.1:
            notes.append((t, "anna", None if purged else "Väntar på besked.", iso(created)))
        # Mail that never became a ticket: rejections (answered), ignored auto-replies.
        while rng.random() < 0.5:
            msg_id += 1
            verdict = "rejected" if rng.random() < 0.8 else "ignored"
            at = iso(created + timedelta(minutes=rng.uniform(1, 600)))
            messages.append((msg_id, f"<x{msg_id}@kalmar.example.test>", f"<x{msg_id}@kalmar.example.test>", "imap",
                             1, str(msg_id), requester, "MittVaccin", verdict,
                             '[{"code": "attachment.missing", "detail": ""}]', routine, rtype, None, 2000, at, at,
                             f"Intake/{verdict.title()}", None, at))
            events.append((at, None, msg_id, "bot", "received", json.dumps({"verdict": verdict})))
            if verdict == "rejected":
                out_id += 1
                outbox.append((out_id, msg_id, None, "rejection", requester, "SV: MittVaccin", "Hej! Blanketten ...",
                               f"<r{out_id}@bot.example.test>", "sent", 1, at, at, at))
    with conn:
        conn.executemany(
            "insert into tickets (id, ref, routine, request_type, queue, status, requester, subject, form, "
            "user_count, assignee, created_at, updated_at, closed_at, purged_at) "
            "values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", tickets)
        conn.executemany(
            "insert into messages (id, message_key, message_id, source, uidvalidity, uid, sender, subject, verdict, "
            "reasons, routine, request_type, ticket_id, size, received_at, recorded_at, moved_to, raw, moved_at) "
            "values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", messages)
        conn.executemany(
            "insert into outbox (id, message_id, ticket_id, kind, to_addr, subject, body, rfc_message_id, status, "
            "attempts, next_attempt_at, created_at, sent_at, attach_blank_form) values (?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
            outbox)
        conn.executemany("insert into events (at, ticket_id, message_id, actor, kind, data) values (?,?,?,?,?,?)",
                         events)
        conn.executemany("insert into attachments (ticket_id, filename, content_type, size, data) "
                         "values (?,?,?,?,?)", atts)
        conn.executemany("insert into notes (ticket_id, author, text, created_at) values (?,?,?,?)", notes)
        conn.executemany("insert into ref_counters (prefix, year, last) values (?,?,?)",
                         [(p, y, last) for (p, y), last in counters.items()])
    conn.close()
    # The triggers kept the queue page's and the overview's counters during the inserts: check them once.
    store = open_store(path)
    counters_ok = store.kept_counters() == store.counted_afresh() and (
        store.kept_ticket_flags() == store.ticket_flags_afresh())
    store.db.conn.close()
    assert counters_ok, "kept counters differ from a fresh count"
    recent = [row for row in tickets if row[5] in ("in_progress", "waiting", "new")] or tickets
    busy = max(set(r[6] for r in tickets[-200:]), key=lambda a: sum(r[6] == a for r in tickets))
    return {"tickets": len(tickets), "messages": len(messages), "outbox": len(outbox), "events": len(events),
            "attachments": len(atts), "ticket_ref": recent[-1][1], "busy_requester": busy}


# -- timing -------------------------------------------------------------------------------------------


def cli_has_limit(intake: str) -> bool:
    out = subprocess.run([intake, "queue", "list", "--help"], capture_output=True, text=True).stdout
    return "--limit" in out


def prepare(n: int, repeat: int, work: Path, routines) -> tuple[dict, dict[str, Callable[[], None]], Callable]:
    """Build the store of ``n`` tickets; return its facts, the timed operations, and the purge."""
    import intake.engine  # noqa: F401 - first: intake.recorder imported on its own meets an import cycle
    from intake.pipeline import Settings, decide
    from intake.recorder import Recorder
    from intake.sources.base import FetchedMail
    from intake.web.accounts import add_user
    from intake.web.app import create_app

    folder = work / f"store-{n}"
    folder.mkdir()
    db_path = folder / "intake.db"
    t0 = time.perf_counter()
    facts = build_store(db_path, n, routines)
    facts["build_s"] = round(time.perf_counter() - t0, 1)
    facts["db_mb"] = round(db_path.stat().st_size / 2**20, 1)
    config_file = folder / "intake.toml"
    config_file.write_text('[store]\npath = "intake.db"\n\n[web]\nsecret_key = "' + "b" * 40 + '"\n\n'
                           f'[routines]\nenabled = {json.dumps([r.id for r in routines])}\n\n'
                           f'[mailbox]\ndefault_routine = "{routines[0].id}"\n')
    config = config_mod.load(config_file)
    store = open_store(db_path)
    add_user(store, "anna", PASSWORD)
    settings = Settings(from_address="mittvaccin-support@example.test", max_age=None,
                        default_routine=routines[0].id)
    recorder = Recorder(store, routines, settings)
    ops: dict[str, Callable[[], None]] = {}

    # Recording one mail from a requester with history (a fresh Message-ID each time; decided beforehand).
    template = (ROOT / "intake" / "demo_mail" / "01-behorighet-ok.eml").read_bytes()
    template = re.sub(rb"(?m)^From: .*$", b"From: Bench <" + facts["busy_requester"].encode() + b">", template)
    decisions = []
    for k in range(repeat + 1):
        raw = template.replace(b"<demo-01@", f"<bench-{k}@".encode())
        decisions.append((decide(raw, routines, settings=settings, now=NOW), raw))

    def record() -> None:
        decision, raw = decisions.pop()
        recorder.record(decision, FetchedMail(uid=1, raw=raw, size=len(raw)), "bench", 1, NOW)

    ops["record one mail (Recorder transaction)"] = record
    since = iso(NOW - timedelta(hours=1))
    ops["  of which: rate-limit query"] = lambda: store.replies_to_since(facts["busy_requester"], since)

    intake = str(Path(sys.executable).with_name("intake"))
    if cli_has_limit(intake):
        argv = [intake, "-c", str(config_file), "queue", "list", "--limit", "50"]
        ops["intake queue list --limit 50 (process)"] = lambda: subprocess.run(argv, check=True, capture_output=True)
    else:
        ops["store.tickets(limit=50) [CLI has no --limit]"] = lambda: store.tickets(limit=50)

    app = create_app(config, routines=routines, settings=settings)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302, resp.status_code
    # The last page as 'Nästa' reaches it (keyset): after the ticket just before the 50 oldest.
    (before_last,) = store.db.execute(
        "select id from tickets order by created_at asc, id asc limit 1 offset 50").fetchone()

    def get(url: str) -> Callable[[], None]:
        def fetch() -> None:
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
        return fetch

    for name, url in [("web: queue page /", "/"), ("web: ticket list, first page", "/tickets"),
                      ("web: ticket list, last page", f"/tickets?after={before_last}"),
                      ("web: ticket list, status new", "/tickets?status=new"),
                      ("web: ticket page", f"/tickets/{facts['ticket_ref']}"),
                      ("web: overview", "/overview"), ("web: mail list", "/mail")]:
        ops[name] = get(url)

    def purge() -> None:
        result = _purge_function()(store, RETENTION_DAYS, now=NOW)
        facts["purged"] = getattr(result, "tickets", result)

    return facts, ops, purge


def _purge_function():
    try:  # the retention code is moving to its own module
        from intake.retention import purge  # type: ignore[import-not-found]
    except ImportError:
        from intake.tickets import purge
    return purge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="ticket counts, comma separated")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per operation (median)")
    parser.add_argument("--keep", type=Path, help="build the stores in this folder and keep them")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    routines = load_packs(sorted(available_packs()))
    work = args.keep or Path(tempfile.mkdtemp(prefix="intake-history-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, float]] = {n: {} for n in sizes}
    try:
        prepared = {}
        for n in sizes:
            prepared[n] = prepare(n, args.repeat, work, routines)
            print(f"built the store of {n:,} tickets in {prepared[n][0]['build_s']} s", flush=True)
        # Each operation in turn, its runs interleaved across the sizes, so load from elsewhere on the
        # machine falls on every size alike; the first round warms caches and is not counted.
        for name in prepared[sizes[0]][1]:
            times: dict[int, list[float]] = {n: [] for n in sizes}
            for round_ in range(args.repeat + 1):
                for n in sizes:
                    start = time.perf_counter()
                    prepared[n][1][name]()
                    if round_:
                        times[n].append(time.perf_counter() - start)
            for n in sizes:
                results[n][name] = statistics.median(times[n]) * 1000
        purge_name = f"retention purge of {DUE_FOR_PURGE} tickets (once)"
        for n in sizes:
            start = time.perf_counter()
            prepared[n][2]()
            results[n][purge_name] = (time.perf_counter() - start) * 1000
        for n in sizes:
            print(f"store of {n:,}: {json.dumps(prepared[n][0], ensure_ascii=False)}")
            prepared[n][1].clear()
    finally:
        if args.keep is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    names = list(results[sizes[0]])
    head = f"{'operation (ms, median)':46}" + "".join(f"{n:>12,}" for n in sizes)
    if len(sizes) > 1:
        head += f"{'ratio':>8}"
    print()
    print(head)
    print("-" * len(head))
    for name in names:
        row = f"{name:46}" + "".join(f"{results[n][name]:>12.1f}" for n in sizes)
        if len(sizes) > 1:
            row += f"{results[sizes[-1]][name] / max(results[sizes[0]][name], 0.001):>7.1f}x"
        print(row)
    if len(sizes) > 1:
        print(f"\nratio = {sizes[-1]:,} / {sizes[0]:,} tickets (target: every list page and queue list <= 1.5x)")


if __name__ == "__main__":
    main()
