"""The handler's desk in the web UI (Flask's test client): reading mail on a ticket, unread follow-ups,
free-text search. Browser-level checks of the same pages are in test_desk_browser.py."""

from __future__ import annotations

import json
from email.message import EmailMessage

from tests.intake.test_tickets import REQUESTER, seed_ticket
from tests.intake.test_web import client, login, web  # noqa: F401 - fixtures

HTML_ONLY = "<p>Hej!</p><p>Jag kommer inte in i <b>MittVaccin</b> sedan i måndags.</p><script>alert(1)</script>"


def followup(store, ref: str, *, html: bool = True, recorded_at: str = "2026-11-25T09:00:00+00:00") -> int:
    """A requester's follow-up on ``ref``, recorded the way the poller links one: HTML only, one attachment."""
    msg = EmailMessage()
    msg["From"] = REQUESTER
    msg["To"] = "mittvaccin@region.example.test"
    msg["Subject"] = f"Sv: MittVaccin – Behörighet [{ref}]"
    msg["Message-ID"] = f"<followup-{ref}@halmstad.example.test>"
    if html:
        msg.set_content(HTML_ONLY, subtype="html")
    else:
        msg.set_content("Hej!\nJag kommer inte in sedan i måndags.\n")
    msg.add_attachment(b"\x89PNG fake screenshot", maintype="image", subtype="png", filename="skarm.png")
    ticket = store.ticket(ref)
    with store.transaction() as db:
        pk = db["messages"].insert({
            "message_key": f"mid:<followup-{ref}@halmstad.example.test>", "message_id": msg["Message-ID"],
            "source": "test", "sender": REQUESTER, "subject": msg["Subject"], "verdict": "accepted", "reasons": "[]",
            "routine": "mittvaccin", "ticket_id": ticket["id"], "recorded_at": recorded_at, "raw": msg.as_bytes(),
        }).last_pk
        store.add_event("followup", ticket_id=ticket["id"], message_id=pk, at=recorded_at, data={})
    return pk


def test_a_followup_is_marked_unread_comes_first_and_reads_as_text(web, client):  # noqa: F811
    app, store = web
    seed_ticket(store, ref="MV-2026-0002", created_at="2026-11-26T08:00:00+00:00")
    pk = followup(store, "MV-2026-0001")
    page = client.get("/tickets").get_data(as_text=True)
    # The older ticket with the follow-up is listed first, marked.
    assert page.index("MV-2026-0001") < page.index("MV-2026-0002")
    assert page.count("Ny uppföljning") == 1

    ticket_page = client.get("/tickets/MV-2026-0001").get_data(as_text=True)
    assert "Oläst" in ticket_page and f"/tickets/MV-2026-0001/messages/{pk}" in ticket_page
    resp = client.get(f"/tickets/MV-2026-0001/messages/{pk}")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Jag kommer inte in i MittVaccin sedan i måndags." in body  # the HTML part, as text
    assert "<b>MittVaccin</b>" not in body and "<script>alert(1)</script>" not in body
    assert "visas här som text" in body and "skarm.png" in body
    viewed = [json.loads(e["data"]) for e in store.db.query(
        "select data from events where kind = 'viewed' and message_id = ?", [pk])]
    assert viewed == [{"what": "message", "via": "web", "message": pk}]

    att = client.get(f"/tickets/MV-2026-0001/messages/{pk}/attachments/0")
    assert att.status_code == 200 and att.data == b"\x89PNG fake screenshot"
    assert "skarm.png" in att.headers["Content-Disposition"]
    assert client.get(f"/tickets/MV-2026-0001/messages/{pk}/attachments/5").status_code == 404
    # Once opened, the follow-up is no longer unread and the list keeps its own order.
    page = client.get("/tickets").get_data(as_text=True)
    assert "Ny uppföljning" not in page and page.index("MV-2026-0002") < page.index("MV-2026-0001")


def test_a_message_of_another_ticket_is_not_found(web, client):  # noqa: F811
    app, store = web
    seed_ticket(store, ref="MV-2026-0002")
    pk = followup(store, "MV-2026-0002")
    assert client.get(f"/tickets/MV-2026-0001/messages/{pk}").status_code == 404
    assert not list(store.db.query("select 1 from events where kind = 'viewed' and message_id = ?", [pk]))


def test_search_finds_reference_requester_subject_and_form_fields_but_never_a_personnummer(web, client):  # noqa: F811
    app, store = web
    seed_ticket(store, ref="MV-2026-0002", requester="olle.ek@kungsbacka.example.test",
                form={"kind": "new", "fields": {"kommun": "Kungsbacka"},
                      "users": [{"row": 1, "namn": "Test Testsson", "personnummer": "19870521-2382"}]})

    def refs(q: str) -> set[str]:
        page = client.get("/tickets", query_string={"q": q}).get_data(as_text=True)
        return {r for r in ("MV-2026-0001", "MV-2026-0002") if f">{r}</a>" in page}

    assert refs("kungsbacka") == {"MV-2026-0002"}  # a form field (and the requester's domain)
    assert refs("eva.berg") == {"MV-2026-0001"}
    assert refs("0001") == {"MV-2026-0001"}
    assert refs("Behörighet") == {"MV-2026-0001", "MV-2026-0002"}
    assert refs("Testsson") == set()  # the users table is not searched
    assert refs("19870521-2382") == set() and refs("198705212382") == set()
    assert refs("%") == set() and refs("") == {"MV-2026-0001", "MV-2026-0002"}


def test_my_tickets(web, client):  # noqa: F811
    app, store = web
    seed_ticket(store, ref="MV-2026-0002")
    client.post("/tickets/MV-2026-0002/take", data={"csrf_token": _csrf(client)})
    page = client.get("/tickets", query_string={"assignee": "anna"}).get_data(as_text=True)
    assert "Mina ärenden" in page and ">MV-2026-0002</a>" in page and ">MV-2026-0001</a>" not in page


def _csrf(c) -> str:
    from tests.intake.test_web import csrf_of

    return csrf_of(c.get("/tickets").get_data(as_text=True))


def test_the_ticket_page_folds_views_and_shows_messages_before_actions(web, client):  # noqa: F811
    app, store = web
    for _ in range(3):
        client.get("/tickets/MV-2026-0001")
    page = client.get("/tickets/MV-2026-0001").get_data(as_text=True)
    assert "Visat 4 gånger" in page
    assert page.index("<h2>Meddelanden</h2>") < page.index("<h2>Åtgärder</h2>")
    assert login  # imported for the fixtures' module


PD_REPLY = "Hej!\nJag har lagt till Test Testsson 19121212-1212 nu.\nHälsningar"


def outbox_rows(store) -> list[dict]:
    return list(store.db.query("select kind, body from outbox where kind = 'handler_reply'"))


def test_a_reply_with_a_personnummer_is_not_sent_and_the_text_is_kept(web, client):  # noqa: F811
    app, store = web
    resp = client.post("/tickets/MV-2026-0001/reply", data={"csrf_token": _csrf(client), "text": PD_REPLY})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Texten skickades inte: den innehåller ett personnummer på rad 2" in page
    assert "Jag har lagt till Test Testsson" in page  # kept in the form to edit
    assert "Skicka ändå" not in page  # a handler cannot override
    assert outbox_rows(store) == []
    forced = client.post("/tickets/MV-2026-0001/reply",
                         data={"csrf_token": _csrf(client), "text": PD_REPLY, "force": "1"})
    assert forced.status_code == 302 and outbox_rows(store) == []  # refused: only admins may
    ok = client.post("/tickets/MV-2026-0001/reply",
                     data={"csrf_token": _csrf(client), "text": "Hej!\nNu är det ordnat.\n"})
    assert ok.status_code == 302 and len(outbox_rows(store)) == 1


def test_an_admin_may_send_anyway_and_it_is_audited(web):  # noqa: F811
    app, store = web
    admin = app.test_client()
    login(admin, "admin")
    page = admin.post("/tickets/MV-2026-0001/reply",
                      data={"csrf_token": _csrf(admin), "text": PD_REPLY}).get_data(as_text=True)
    assert "Skicka ändå trots personuppgifterna" in page and outbox_rows(store) == []
    resp = admin.post("/tickets/MV-2026-0001/reply", data={"csrf_token": _csrf(admin), "text": PD_REPLY, "force": "1"})
    assert resp.status_code == 302 and len(outbox_rows(store)) == 1
    [event] = store.db.query("select actor, data from events where kind = 'personal_data_override'")
    assert event["actor"] == "admin"
    data = json.loads(event["data"])
    assert data["what"] == "reply" and ["personnummer", 2] in data["findings"]
    assert "19121212" not in event["data"]


def test_the_completion_note_and_cli_replies_are_guarded_in_the_library(web):  # noqa: F811
    import pytest

    from intake.desk import PersonalDataInReply, TicketDesk
    from intake.pipeline import Settings

    app, store = web
    desk = TicketDesk(store, app.extensions["intake"].routines, Settings())
    with pytest.raises(PersonalDataInReply) as refused:
        desk.mark_done("MV-2026-0001", "anna", "Klart för 19121212-1212.")
    assert "ett personnummer på rad 1" in refused.value.sv and "19121212" not in str(refused.value)
    assert store.ticket("MV-2026-0001")["status"] == "new"
    with pytest.raises(PersonalDataInReply):
        desk.reply("MV-2026-0001", "anna", PD_REPLY)
    assert outbox_rows(store) == []


def test_admins_deactivate_users_change_roles_and_reset_passwords_and_names_ignore_case(web):  # noqa: F811
    from intake.web.accounts import get_user

    app, store = web
    admin = app.test_client()
    login(admin, "admin")
    anna = app.test_client()
    assert login(anna, "ANNA").status_code == 302  # user names are case-insensitive
    assert anna.get("/tickets").status_code == 200
    token = _csrf(admin)
    admin.post("/admin/users/anna/role", data={"csrf_token": token, "role": "admin"})
    assert get_user(store, "anna").role == "admin"
    admin.post("/admin/users/Anna/password", data={"csrf_token": token, "password": "ett-nytt-langt-losen"})
    assert anna.get("/tickets").status_code == 302  # the old session ended with the password change
    assert login(anna, "anna", "ett-nytt-langt-losen").status_code == 302
    admin.post("/admin/users/anna/deactivate", data={"csrf_token": token})
    assert get_user(store, "anna") is None and anna.get("/tickets").status_code == 302
    # An admin cannot lock themselves out.
    page = admin.post("/admin/users/admin/deactivate", data={"csrf_token": token}, follow_redirects=True)
    assert "du kan inte inaktivera dig själv" in page.get_data(as_text=True)
    kinds = [r["kind"] for r in store.db.query("select kind from events where kind in "
                                                "('role_changed', 'password_changed', 'user_deactivated')")]
    assert sorted(kinds) == ["password_changed", "role_changed", "user_deactivated"]
    # A second account differing only in case is refused.
    admin.post("/admin/users", data={"csrf_token": token, "name": "ADMIN", "password": "x" * 12, "role": "handler"})
    assert [u["name"] for u in store.db.query("select name from users where name = 'ADMIN'")] == []
    # Handlers cannot reach any of it.
    handler = app.test_client()
    from intake.web.accounts import add_user

    add_user(store, "olle", "olles-langa-losen")
    login(handler, "olle", "olles-langa-losen")
    assert handler.post("/admin/users/admin/deactivate", data={"csrf_token": _csrf(handler)}).status_code == 403
