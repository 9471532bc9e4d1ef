"""No mail loops: an auto-responder that answers everything must not get more than a few replies.

The bot polls a local folder and sends over SMTP to a real server (aiosmtpd). The responder is the
loop: each reply the SMTP server receives for it becomes a new incoming mail from it, dropped back
into the bot's mailbox. One responder behaves badly (no Auto-Submitted), one well (RFC 3834).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from email.message import EmailMessage

import pytest

from tests.intake.test_outbox_smtp import SmtpBot
from tests.mailmaker import make_mail

RESPONDER = "frånvaro.svarare@falkenberg.example.test"
ROUNDS = 25


def responder_answer(reply: EmailMessage, n: int, *, well_behaved: bool) -> bytes:
    """What an Outlook-style auto-responder sends back to one of the bot's replies."""
    their_id = reply["Message-ID"].strip()
    headers = {
        "In-Reply-To": their_id,
        "References": f"{(reply['References'] or '').strip()} {their_id}".strip(),
    }
    if well_behaved:
        headers["Auto-Submitted"] = "auto-replied"
    return make_mail(
        subject=f"Automatiskt svar: {reply['Subject']}",
        body="Hej!\nJag är ledig till och med måndag och läser inte e-post.\n",
        sender=f"Frånvaro Svarare <{RESPONDER}>",
        message_id=f"<autosvar-{n}@falkenberg.example.test>",
        headers=headers,
    )


def play(bot: SmtpBot, first: bytes, *, well_behaved: bool, rounds: int = ROUNDS) -> int:
    """Drop ``first``, then let bot and responder answer each other for ``rounds`` rounds."""
    bot.drop(first)
    seen = 0
    answers = 0
    for _ in range(rounds):
        bot.poll()
        bot.send()
        new = bot.server.messages[seen:]
        seen = len(bot.server.messages)
        for received in new:
            if RESPONDER not in received.rcpt_tos:
                continue
            reply = email.message_from_bytes(received.data, policy=email.policy.default)
            answers += 1
            bot.drop(responder_answer(reply, answers, well_behaved=well_behaved))
    return answers


FIRST_MAILS = {
    # Rejected (unknown subject): each answer is rejected again, the loop a reply limit must stop.
    "rejection": lambda: make_mail(subject="Fråga om vaccinationer", sender=RESPONDER),
    # Accepted (support): the answer carries the ticket ref and joins the ticket.
    "ack": lambda: make_mail(subject="MittVaccin – användarstöd", sender=RESPONDER),
}


@pytest.mark.parametrize("first", sorted(FIRST_MAILS))
def test_badly_behaved_responder_gets_at_most_the_rate_limit(tmp_path, smtp_server, first):
    limit = 4
    bot = SmtpBot(tmp_path, smtp_server, replies={"rate_limit_per_hour": limit})
    play(bot, FIRST_MAILS[first](), well_behaved=False)

    to_responder = [m for m in smtp_server.messages if RESPONDER in m.rcpt_tos]
    assert 1 <= len(to_responder) <= limit
    if first == "rejection":
        assert len(to_responder) == limit  # the loop really ran into the limit
    # Every mail of the loop was recorded and taken out of the inbox; nothing is waiting to be sent.
    assert bot.desk.inbox_left() == []
    assert len(bot.desk.messages()) == len(to_responder) + 1
    assert [r for r in bot.outbox_rows() if r["status"] != "sent"] == []
    # The loop ended: polling and sending again produces nothing.
    bot.poll()
    bot.send()
    assert len([m for m in smtp_server.messages if RESPONDER in m.rcpt_tos]) == len(to_responder)


@pytest.mark.parametrize("first", sorted(FIRST_MAILS))
def test_well_behaved_responder_gets_nothing_after_the_first_reply(tmp_path, smtp_server, first):
    bot = SmtpBot(tmp_path, smtp_server, replies={"rate_limit_per_hour": 50})
    answers = play(bot, FIRST_MAILS[first](), well_behaved=True)

    assert answers == 1  # it answered our one reply...
    assert len(smtp_server.messages) == 1  # ...and we never answered it back
    verdicts = [m["verdict"] for m in bot.desk.messages()]
    assert verdicts[1:] == ["ignored"]


def _oof(headers: dict[str, str], sender: str = RESPONDER) -> bytes:
    return make_mail(subject="Frånvaro: MittVaccin – användarstöd", sender=sender, headers=headers,
                     body="Hej!\nJag är på semester och läser inte e-post.\n")


def _dsn() -> bytes:
    """A delivery status notification (RFC 3464) as a mail server sends it."""
    return (
        "From: Mail Delivery System <mail@falkenberg.example.test>\r\n"
        "To: mittvaccin@region.example.test\r\n"
        "Subject: Undeliverable: MittVaccin – användarstöd\r\n"
        "Message-ID: <dsn-1@falkenberg.example.test>\r\n"
        f"Date: {email.utils.formatdate()}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Meddelandet kunde inte levereras.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.falkenberg.example.test\r\n\r\n"
        "Final-Recipient: rfc822; x@falkenberg.example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1--\r\n"
    ).encode()


NO_REPLY = {
    "x-auto-response-suppress": lambda: _oof({"X-Auto-Response-Suppress": "DR, OOF, AutoReply"}),
    "x-auto-response-suppress-all": lambda: _oof({"X-Auto-Response-Suppress": "All"}),
    "precedence-bulk": lambda: _oof({"Precedence": "bulk"}),
    "list-id": lambda: _oof({"List-Id": "Vaccinationsnytt <vaccin.lists.example.test>"}),
    "mailer-daemon": lambda: _oof({}, sender="MAILER-DAEMON@falkenberg.example.test"),
    "multipart-report": _dsn,
}


@pytest.mark.parametrize("kind", sorted(NO_REPLY))
def test_automatic_mail_gets_no_reply(tmp_path, smtp_server, kind):
    bot = SmtpBot(tmp_path, smtp_server)
    bot.drop(NO_REPLY[kind]())
    bot.poll()
    bot.send()
    assert smtp_server.messages == []
    [m] = bot.desk.messages()
    assert m["verdict"] == "ignored"
    assert bot.outbox_rows() == []
    assert bot.desk.inbox_left() == []
