"""Deciding a batch in worker processes (``poll.workers``): the same decisions, the same records, and nothing
lost when a worker dies or deciding fails. Real forked processes, a real store, real fixture mail."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from intake.deciders import MIN_BATCH, DecidePool
from intake.mailer import render_reply
from intake.sources.base import FetchedMail
from tests.intake.test_decision_table import _cases
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _summary(d):
    reply = render_reply(d.reply, ref=None) if d.reply is not None else None
    return (d.verdict, d.codes, d.routine, d.request_type, d.personal_data, d.metadata_only,
            reply and (d.reply.kind, reply.subject, reply.body), tuple(r.id for r in d.offered))


def test_workers_decide_every_fixture_mail_as_the_poller_itself_does(tmp_path):
    desk = Desk(tmp_path, poll={"workers": 2})
    poller = _poller(desk)
    mails = [FetchedMail(uid=i, raw=raw, size=len(raw), received=NOW) for i, raw in enumerate(_cases().values())]
    assert len(mails) > 50
    here = [poller.decide(m, now=NOW) for m in mails]
    with DecidePool(poller, 2, desk.config.db_path) as pool:
        there = pool.decide(mails, NOW)
        assert pool._executor is not None  # really decided in the workers
    assert [_summary(d) for d in there] == [_summary(d) for d in here]
    # The form-parsing worker the poller started before the fork is still its own, and still answers.
    again = [poller.decide(m, now=NOW) for m in mails]
    assert [_summary(d) for d in again] == [_summary(d) for d in here]
    # The routines come back as the poller's own objects (the mailer renders with them).
    assert all(d.reply.routine in poller.routines for d in there if d.reply is not None)


def _poller(desk):
    from intake.app import make_poller

    return make_poller(desk.config, desk.store, desk.routines)


def _fill(desk, n: int) -> None:
    for i in range(n):
        desk.drop(make_mail(subject="MittVaccin – användarstöd" if i % 4 else "Fel ämne",
                            message_id=f"<w-{i}@halmstad.example.test>",
                            sender=f"Person {i} <p{i}@halmstad.example.test>"))


def _outcome(desk):
    rows = desk.store.db.query("select message_key, verdict, reasons, ticket_id is not null t from messages")
    return sorted((r["message_key"], r["verdict"], r["reasons"], r["t"]) for r in rows)


def test_a_poll_with_workers_records_what_a_poll_without_them_does(tmp_path):
    one, two = Desk(tmp_path / "one", poll={"workers": 1}), Desk(tmp_path / "two", poll={"workers": 2})
    for desk in (one, two):
        _fill(desk, 60)
        result = desk.poll()
        assert (result.recorded, result.moved) == (60, 60)
        assert desk.inbox_left() == []
        assert desk.send().sent == 60
    assert _outcome(one) == _outcome(two)
    assert [t["request_type"] for t in one.store.tickets()] == [t["request_type"] for t in two.store.tickets()]


def test_a_worker_that_dies_costs_nothing_the_poller_decides_the_batch_itself(tmp_path, caplog):
    desk = Desk(tmp_path, poll={"workers": 2})
    _fill(desk, 12)
    parent = os.getpid()
    poller = _poller(desk)
    real = poller.decide

    def die_in_a_worker(fetched, **kw):
        if os.getpid() != parent:
            os._exit(9)  # as the kernel's memory killer would end it: no exception, no answer
        return real(fetched, **kw)

    poller.decide = die_in_a_worker
    result = poller.poll_once()
    assert (result.recorded, result.moved, result.errors) == (12, 12, [])
    assert desk.inbox_left() == []
    assert "a deciding worker died" in caplog.text


def test_a_mail_whose_deciding_fails_in_a_worker_is_counted_and_left_like_in_the_poller(tmp_path):
    desk = Desk(tmp_path, poll={"workers": 2, "max_attempts": 2})
    _fill(desk, MIN_BATCH * 2)
    poller = _poller(desk)
    real = poller.decide
    parent = os.getpid()

    def fail_on_one(fetched, **kw):
        if b"<w-3@" in (fetched.raw or b"") and os.getpid() != parent:  # only in a worker
            raise RuntimeError("deciding broke")
        return real(fetched, **kw)

    poller.decide = fail_on_one
    result = poller.poll_once()
    assert result.recorded == MIN_BATCH * 2 - 1
    assert len(result.errors) == 1 and "mail.handling_failed" in result.errors[0]
    assert len(desk.inbox_left()) == 1  # left in the inbox, tried again by the next poll
    second = poller.poll_once()  # one mail: decided in the poller, where it does not fail
    assert second.recorded == 1 and desk.inbox_left() == []


def test_poll_once_sends_every_reply_exactly_once_while_its_sender_process_runs_beside_the_poll(tmp_path):
    """``poll --once`` with workers sends from a process of its own while it polls, then sends the rest
    itself: every reply goes exactly once, however the two rounds split the work."""
    import subprocess
    import sys

    from intake.store import open_store

    conf = tmp_path / "intake.toml"
    conf.write_text('[store]\npath = "intake.db"\n[mailbox]\nkind = "local"\npath = "mailbox"\n'
                    '[outbox]\nkind = "file"\ndir = "outbox"\n[replies]\nfrom_address = "mv@region.example.test"\n'
                    "max_age_days = 0\n[poll]\nworkers = 2\n")
    inbox = tmp_path / "mailbox"
    inbox.mkdir()
    n = 160  # several batches of 50 at most
    for i in range(n):
        (inbox / f"{i:04d}.eml").write_bytes(make_mail(
            subject="MittVaccin – användarstöd" if i % 3 else "Fel ämne",
            message_id=f"<early-{i}@halmstad.example.test>", sender=f"Person {i} <p{i}@halmstad.example.test>"))
    done = subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), "poll", "--once"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"outbox: {n} sent, 0 to retry, 0 failed" in done.stdout
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == n
    store = open_store(tmp_path / "intake.db")
    assert store.db.execute("select count(*) from outbox where status = 'sent'").fetchone()[0] == n
    per_row = store.db.execute("select count(*) from events where kind = 'reply_sent' "
                               "group by json_extract(data, '$.outbox') having count(*) > 1").fetchall()
    assert per_row == []  # no reply sent twice
    assert store.db.execute("select count(*) from events where kind = 'reply_sent'").fetchone()[0] == n
