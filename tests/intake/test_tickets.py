"""Handler actions on tickets (intake.desk, intake.held, intake.reports, intake.retention): effects, audit
events, replies, held mail, retention."""

from __future__ import annotations

import email
import email.policy
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from intake.desk import TicketDesk, TicketError
from intake.reports import Filters, export_xlsx, search, stats
from intake.retention import purge
from intake.store import Store
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
REQUESTER = "eva.berg@halmstad.example.test"
#: A form as the parser stores it, with one of Skatteverket's published test personnummer.
FORM = {
    "kind": "new",
    "kinds_checked": ["new"],
    "fields": {"kommun": "Halmstad", "bestallare_namn": "Eva Berg", "bestallare_epost": REQUESTER},
    "users": [{"row": 1, "namn": "Test Testsson", "personnummer": "19121212-1212", "roll": "Vaccinatör"}],
    "filename": "blankett.xlsx",
    "format": "xlsx",
}


class Clock:
    """A settable clock, so closing times and retention are exact."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def seed_ticket(store: Store, *, ref: str = "MV-2026-0001", subject: str = "MittVaccin – Behörighet",
                requester: str = REQUESTER, form: dict | None = None, request_type: str = "behorighet",
                queue: str = "behorighet", created_at: str = "2026-11-24T08:00:00+00:00",
                raw: bytes = b"Subject: x\r\n\r\nbody\r\n", attachment: bytes | None = b"PK\x03\x04 form bytes",
                status: str = "new") -> int:
    """A ticket written the way the poller writes it: its incoming message, form, attachment and events."""
    form = FORM if form is None else form
    with store.transaction() as db:
        msg_pk = db["messages"].insert({
            "message_key": f"mid:<{ref}@halmstad.example.test>", "message_id": f"<{ref}@halmstad.example.test>",
            "source": "test", "sender": requester, "subject": subject, "verdict": "accepted", "reasons": "[]",
            "routine": "mittvaccin", "request_type": request_type, "recorded_at": created_at, "raw": raw,
        }).last_pk
        ticket_id = db["tickets"].insert({
            "ref": ref, "routine": "mittvaccin", "request_type": request_type, "queue": queue, "status": status,
            "requester": requester, "subject": subject, "form": json.dumps(form, ensure_ascii=False) if form else None,
            "user_count": len(form["users"]) if form else 0, "created_at": created_at, "updated_at": created_at,
        }).last_pk
        db["messages"].update(msg_pk, {"ticket_id": ticket_id})
        if attachment is not None:
            db["attachments"].insert({"ticket_id": ticket_id, "filename": "blankett.xlsx",
                                      "content_type": "application/octet-stream", "size": len(attachment),
                                      "data": attachment})
        store.add_event("received", message_id=msg_pk, at=created_at, data={"verdict": "accepted", "reasons": []})
        store.add_event("ticket_created", ticket_id=ticket_id, message_id=msg_pk, at=created_at,
                        data={"ref": ref, "queue": queue, "request_type": request_type})
    return ticket_id


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def desk(fresh_store, routines, settings, clock):
    seed_ticket(fresh_store)
    return TicketDesk(fresh_store, routines, settings, clock=clock)


def events(store: Store, kind: str | None = None) -> list[dict]:
    rows = [dict(e, data=json.loads(e["data"])) for e in store.db.query("select * from events order by id")]
    return [e for e in rows if kind is None or e["kind"] == kind]


def outbox(store: Store) -> list[dict]:
    return list(store.db.query("select * from outbox order by id"))


def test_take_assigns_to_me_and_starts_work(desk):
    t = desk.take("MV-2026-0001", "anna")
    assert (t["assignee"], t["status"]) == ("anna", "in_progress")
    [assigned] = events(desk.store, "assigned")
    assert (assigned["actor"], assigned["data"]) == ("anna", {"from": None, "to": "anna"})
    [changed] = events(desk.store, "status_changed")
    assert changed["data"] == {"from": "new", "to": "in_progress"}


def test_assign_to_a_colleague_needs_an_account_once_accounts_exist(desk):
    from intake.web.accounts import add_user

    add_user(desk.store, "bertil", "ett långt lösenord")
    assert desk.assign("MV-2026-0001", "anna", "bertil")["assignee"] == "bertil"
    with pytest.raises(TicketError):
        desk.assign("MV-2026-0001", "anna", "nobody")


@pytest.mark.parametrize(("path", "allowed"), [
    (["in_progress", "waiting", "in_progress", "done"], True),
    (["rejected", "in_progress", "done"], True),
    (["done", "waiting"], False),
    (["done", "new"], False),
    (["rejected", "done"], False),
    (["waiting", "new"], False),
])
def test_status_follows_the_allowed_transitions(desk, path, allowed):
    ref = "MV-2026-0001"
    if allowed:
        for status in path:
            desk.set_status(ref, "anna", status)
        assert desk.store.ticket(ref)["status"] == path[-1]
    else:
        for status in path[:-1]:
            desk.set_status(ref, "anna", status)
        with pytest.raises(TicketError, match="cannot go from"):
            desk.set_status(ref, "anna", path[-1])
        assert desk.store.ticket(ref)["status"] == path[-2]


def test_unknown_status_is_refused(desk):
    with pytest.raises(TicketError, match="unknown status"):
        desk.set_status("MV-2026-0001", "anna", "closed")


def test_closing_sets_closed_at_and_reopening_clears_it(desk, clock):
    ref = "MV-2026-0001"
    clock.now = T0 + timedelta(hours=3)
    assert desk.set_status(ref, "anna", "rejected")["closed_at"] == "2026-11-24T12:00:00+00:00"
    assert desk.set_status(ref, "anna", "in_progress")["closed_at"] is None


def test_mark_done_queues_the_completion_message_threaded_to_the_request(desk, clock):
    ref = "MV-2026-0001"
    clock.now = T0 + timedelta(hours=2)
    t = desk.mark_done(ref, "anna", note="Behörigheten gäller från måndag.")
    assert (t["status"], t["closed_at"]) == ("done", "2026-11-24T11:00:00+00:00")
    [row] = outbox(desk.store)
    assert (row["kind"], row["to_addr"], row["status"]) == ("completion", REQUESTER, "pending")
    assert ref in row["subject"] and row["subject"].startswith("Utfört: MittVaccin – Behörighet")
    assert "Behörigheten gäller från måndag." in row["body"] and ref in row["body"]
    assert "19121212-1212" not in row["body"]
    assert row["in_reply_to"] == f"<{ref}@halmstad.example.test>"
    queued = events(desk.store, "reply_queued")
    assert [(e["actor"], e["data"]["kind"]) for e in queued] == [("anna", "completion")]


def test_set_status_done_also_queues_the_completion(desk):
    desk.set_status("MV-2026-0001", "anna", "done")
    assert [r["kind"] for r in outbox(desk.store)] == ["completion"]


def test_note_is_kept_out_of_the_event_data(desk):
    note_id = desk.add_note("MV-2026-0001", "anna", "Ringde beställaren, personnummer 19121212-1212 stämmer.")
    [note] = events(desk.store, "note")
    assert note["data"] == {"note": note_id} and note["actor"] == "anna"
    assert "19121212" not in json.dumps(events(desk.store))
    with pytest.raises(TicketError):
        desk.add_note("MV-2026-0001", "anna", "   ")


def test_reply_goes_through_the_outbox_threaded_with_the_ticket_ref(desk, routine):
    outbox_id = desk.reply("MV-2026-0001", "anna", "Hej! Vilken enhet gäller det?")
    [row] = outbox(desk.store)
    assert row["id"] == outbox_id
    assert (row["kind"], row["to_addr"]) == ("handler_reply", REQUESTER)
    assert row["subject"] == "SV: MittVaccin – Behörighet [MV-2026-0001]"
    assert row["in_reply_to"] == row["references_"] == "<MV-2026-0001@halmstad.example.test>"
    assert row["body"].startswith("Hej! Vilken enhet gäller det?")

    # And the real outbox builds a threaded, non-automatic mail from it.
    from intake.outbox import Outbox

    sent = []
    Outbox(desk.store, sent.append, from_address="mittvaccin@region.example.test", clock=lambda: T0).send_due()
    [msg] = sent
    assert msg["In-Reply-To"] == "<MV-2026-0001@halmstad.example.test>"
    assert msg["Auto-Submitted"] is None
    assert [e["data"]["kind"] for e in events(desk.store, "reply_sent")] == ["handler_reply"]


def test_view_is_audited(desk):
    desk.view("MV-2026-0001", "anna")
    [viewed] = events(desk.store, "viewed")
    assert (viewed["actor"], viewed["data"]) == ("anna", {"what": "ticket", "via": "web"})


def test_closed_ticket_cannot_be_taken(desk):
    desk.set_status("MV-2026-0001", "anna", "rejected")
    with pytest.raises(TicketError, match="closed"):
        desk.take("MV-2026-0001", "bertil")


# -- retention -----------------------------------------------------------------------------------------


def test_purge_removes_form_attachments_and_mail_but_keeps_metadata_and_history(fresh_store, routines, settings):
    clock = Clock()
    desk = TicketDesk(fresh_store, routines, settings, clock=clock)
    seed_ticket(fresh_store, ref="MV-2026-0002")  # stays open: never purged
    seed_ticket(fresh_store, ref="MV-2026-0003")
    desk = TicketDesk(fresh_store, routines, settings, clock=clock)
    desk.add_note("MV-2026-0003", "anna", "Anteckning med 19121212-1212.")
    # Only an admin's explicit "send anyway" lets personal data into the completion mail; purge clears it too.
    desk.mark_done("MV-2026-0003", "anna", note="Klart för 19121212-1212.", role="admin", force=True)
    from intake.outbox import Outbox

    Outbox(fresh_store, lambda m: None, from_address="x@region.example.test", clock=clock).send_due()
    history_before = len(fresh_store.events(fresh_store.ticket("MV-2026-0003")["id"]))

    # 89 days after closing: nothing yet.
    assert purge(fresh_store, 90, now=T0 + timedelta(days=89)).tickets == 0
    result = purge(fresh_store, 90, now=T0 + timedelta(days=91))
    assert result.tickets == 1

    t = fresh_store.ticket("MV-2026-0003")
    assert t["form"] is None and t["purged_at"] == (T0 + timedelta(days=91)).isoformat()
    assert (t["ref"], t["status"], t["requester"], t["user_count"], t["request_type"]) == (
        "MV-2026-0003", "done", REQUESTER, 1, "behorighet")
    db = fresh_store.db
    assert list(db.query("select * from attachments where ticket_id = ?", [t["id"]])) == []
    assert [m["raw"] for m in db.query("select raw from messages where ticket_id = ?", [t["id"]])] == [None]
    assert [n["text"] for n in db.query("select text from notes where ticket_id = ?", [t["id"]])] == [None]
    dump = json.dumps([dict(r) for r in db.query("select * from outbox")] +
                      [dict(r) for r in db.query("select form from tickets where ref = 'MV-2026-0003'")])
    assert "19121212" not in dump
    history = fresh_store.events(t["id"])
    assert len(history) == history_before + 1 and history[-1]["kind"] == "purged"
    assert "19121212" not in json.dumps([dict(e) for e in history])

    other = fresh_store.ticket("MV-2026-0002")
    assert other["form"] is not None and other["purged_at"] is None
    assert list(db.query("select 1 from attachments where ticket_id = ?", [other["id"]]))

    # Running it again does nothing more.
    assert purge(fresh_store, 90, now=T0 + timedelta(days=100)).tickets == 0


def test_purge_in_batches_purges_every_ticket_once_with_its_own_event(fresh_store, monkeypatch):
    """The purge works on batches of tickets (set-based statements): every closed ticket of every batch is
    purged, each with its own 'purged' event counting its own attachments; open tickets stay."""
    from intake import retention

    monkeypatch.setattr(retention, "BATCH", 2)
    refs = [f"MV-2026-{i:04d}" for i in range(1, 6)]
    for ref in refs:
        seed_ticket(fresh_store, ref=ref, status="done")
    seed_ticket(fresh_store, ref="MV-2026-0099")  # open
    closed = (T0 - timedelta(days=200)).isoformat()
    fresh_store.db.execute("update tickets set closed_at = ? where status = 'done'", [closed])
    result = purge(fresh_store, 90, now=T0)
    assert (result.tickets, result.messages) == (5, 5)
    for ref in refs:
        t = fresh_store.ticket(ref)
        assert t["form"] is None and t["purged_at"] == T0.isoformat()
        purged = [e for e in fresh_store.events(t["id"]) if e["kind"] == "purged"]
        assert len(purged) == 1 and json.loads(purged[0]["data"]) == {"attachments": 1, "days": 90}
    assert fresh_store.ticket("MV-2026-0099")["purged_at"] is None
    assert purge(fresh_store, 90, now=T0).tickets == 0


# -- list, export, statistics ----------------------------------------------------------------------------


def test_search_filters_sorts_and_pages(fresh_store):
    for i in range(1, 8):
        seed_ticket(fresh_store, ref=f"MV-2026-{i:04d}", created_at=f"2026-11-{10 + i:02d}T08:00:00+00:00",
                    queue="support" if i % 2 else "behorighet", request_type="felsokning" if i % 2 else "behorighet")
    rows, nav = search(fresh_store, Filters(queue="support"), sort="ref", descending=False, per_page=3)
    assert [r["ref"] for r in rows] == ["MV-2026-0001", "MV-2026-0003", "MV-2026-0005"]
    assert nav.prev_before is None and nav.next_after == rows[-1]["id"]
    rows, nav = search(fresh_store, Filters(queue="support"), sort="ref", descending=False, after=nav.next_after,
                       per_page=3)
    assert [r["ref"] for r in rows] == ["MV-2026-0007"] and nav.next_after is None
    rows, nav = search(fresh_store, Filters(queue="support"), sort="ref", descending=False, before=nav.prev_before,
                       per_page=3)
    assert [r["ref"] for r in rows] == ["MV-2026-0001", "MV-2026-0003", "MV-2026-0005"]
    rows, total = search(fresh_store, Filters(date_from="2026-11-12", date_to="2026-11-13"), per_page=None)
    assert sorted(r["ref"] for r in rows) == ["MV-2026-0002", "MV-2026-0003"]
    with pytest.raises(TicketError):
        search(fresh_store, sort="form; drop table tickets")


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("sort", ["created_at", "closed_at", "assignee", "user_count", "ref"])
def test_keyset_pages_walk_the_whole_list_both_ways(fresh_store, sort, descending):
    """Following 'next' from the first page visits every ticket once in the list's order (ties and empty
    values included), and following 'previous' from the last page gives the same pages back."""
    for i in range(1, 12):
        t = seed_ticket(fresh_store, ref=f"MV-2026-{i:04d}", created_at=f"2026-11-{10 + i % 4:02d}T08:00:00+00:00")
        fresh_store.db.execute("update tickets set assignee = ?, closed_at = ?, user_count = ? where id = ?",
                               ["anna" if i % 3 == 0 else None, f"2026-11-2{i % 2}" if i % 4 else None, i % 3, t])
    everything, _ = search(fresh_store, sort=sort, descending=descending, per_page=None)
    pages, nav = [], None
    while True:
        rows, nav = search(fresh_store, sort=sort, descending=descending, per_page=4,
                           after=nav.next_after if nav else None)
        pages.append([r["ref"] for r in rows])
        if nav.next_after is None:
            break
    assert [ref for page in pages for ref in page] == [r["ref"] for r in everything]
    assert [len(p) for p in pages] == [4, 4, 3]
    back = [pages[-1]]
    while nav.prev_before is not None:
        rows, nav = search(fresh_store, sort=sort, descending=descending, per_page=4, before=nav.prev_before)
        back.append([r["ref"] for r in rows])
    assert back[::-1] == pages


def test_export_is_a_real_workbook_and_never_a_formula(fresh_store):
    seed_ticket(fresh_store, requester='=HYPERLINK("http://evil.example","x")')
    rows, _ = search(fresh_store, per_page=None)
    wb = load_workbook(io.BytesIO(export_xlsx(rows)))
    ws = wb.active
    assert ws["A1"].value == "Ärende" and ws["A2"].value == "MV-2026-0001"
    requester = [c for c in ws[2] if c.value and str(c.value).startswith("=HYPERLINK")]
    assert requester and all(c.data_type == "s" for c in requester)
    assert ws["E2"].value == "Ny"  # statuses in Swedish


def test_stats_counts_days_queues_reasons_and_time_to_done(desk, clock, fresh_store):
    """The overview covers its period (here 3 days): older tickets and rejections are not counted."""
    seed_ticket(fresh_store, ref="MV-2026-0002", queue="support", request_type="felsokning",
                created_at="2026-11-23T08:00:00+00:00")
    seed_ticket(fresh_store, ref="MV-2025-0001", queue="old", created_at="2025-06-01T08:00:00+00:00",
                status="done")
    with fresh_store.transaction() as db:
        db.execute("update tickets set closed_at = '2025-06-02T08:00:00+00:00' where ref = 'MV-2025-0001'")
        for at, codes in (("2026-11-23T09:00:00+00:00", ["attachment.missing"]),
                          ("2026-11-24T09:00:00+00:00", ["attachment.missing", "form.no_users"]),
                          ("2025-06-01T09:00:00+00:00", ["form.no_users"])):
            db["messages"].insert({"message_key": f"k{at}", "verdict": "rejected", "recorded_at": at,
                                   "reasons": json.dumps([{"code": c, "detail": ""} for c in codes])})
    clock.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    desk.mark_done("MV-2026-0001", "anna")  # created 08:00, done 12:00: 4 hours
    s = stats(fresh_store, days=3, now=clock.now)
    assert s["per_day"] == [("2026-11-22", 0), ("2026-11-23", 1), ("2026-11-24", 1)]
    assert dict(s["per_queue"]) == {"behorighet": 1, "support": 1}
    assert s["rejection_reasons"] == [("attachment.missing", 2), ("form.no_users", 1)]
    assert s["median_hours_to_done"] == pytest.approx(4.0) and s["done"] == 1
    assert dict(s["per_status"]) == {"done": 1, "new": 1}


# -- held mail, through the real poller -------------------------------------------------------------------

HELD_BODY = "Hej!\nGäller 19121212-1212 som inte kan logga in.\n"


@pytest.fixture
def held_desk(tmp_path):
    # A reject threshold above the finding's score makes the real pipeline hold the mail instead.
    return Desk(tmp_path, personal_data={"reject_threshold": 0.99})


def _ticket_desk(held_desk: Desk) -> TicketDesk:
    from intake.pipeline import Settings

    return TicketDesk(held_desk.store, held_desk.routines, Settings.from_config(held_desk.config))


def test_release_of_a_held_mail_creates_a_ticket_and_a_receipt(held_desk):
    held_desk.drop(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY))
    held_desk.poll()
    [msg] = held_desk.messages()
    assert msg["verdict"] == "held" and held_desk.store.tickets() == []

    ref = _ticket_desk(held_desk).release_held(msg["id"], "anna")
    t = held_desk.store.ticket(ref)
    assert (t["status"], t["request_type"], t["queue"]) == ("new", "felsokning", "support")
    assert t["requester"] == REQUESTER
    [msg] = held_desk.messages()
    assert (msg["verdict"], msg["ticket_id"]) == ("accepted", t["id"])
    [released] = events(held_desk.store, "held_released")
    assert released["actor"] == "anna" and released["data"]["ref"] == ref
    assert [e["kind"] for e in held_desk.store.events(t["id"])] == ["ticket_created", "held_released", "reply_queued"]

    held_desk.send()
    [receipt] = held_desk.sent_mail()
    assert ref in receipt["Subject"] and receipt["In-Reply-To"] == msg["message_id"]
    with pytest.raises(TicketError, match="not held"):
        _ticket_desk(held_desk).release_held(msg["id"], "anna")


def test_reject_of_a_held_mail_forgets_it_and_says_what_to_remove(held_desk):
    held_desk.drop(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY))
    held_desk.poll()
    [msg] = held_desk.messages()
    _ticket_desk(held_desk).reject_held(msg["id"], "anna")
    [msg] = held_desk.messages()
    assert msg["verdict"] == "rejected" and msg["raw"] is None
    assert [r["code"] for r in json.loads(msg["reasons"])] == ["body.personal_data"]
    assert held_desk.store.tickets() == []
    held_desk.send()
    [reply] = held_desk.sent_mail()
    body = reply.get_content()
    assert "personnummer" in body and "19121212" not in body
    assert email.message_from_bytes(reply.as_bytes(), policy=email.policy.default)["Auto-Submitted"]
