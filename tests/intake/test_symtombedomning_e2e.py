"""1177 symtombedömning end to end: orders APPENDed to a real Dovecot, one poll of the real poller (which
hands the orderer register to the decision), replies sent to a real aiosmtpd server, then a handler
marks the ticket done and the completion mail arrives, counting persons and roles without a name."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta

import pytest

from intake import config as config_mod
from intake.app import make_poller, open_app
from intake.orderers import add_orderer, choose_routine
from intake.outbox import Outbox, smtp_transport
from intake.pipeline import Settings
from intake.tickets import TicketDesk
from tests.intake.imapdesk import env_for
from tests.intake.sbforms import CANCEL, FIELDS, ORDER, ORDERER, ORDERER_EMAIL, PERSONS, order_mail

pytestmark = pytest.mark.imap

FROM = "symtombedomning@inera.example.test"
TODAY = datetime.now(UTC).date()  # the poller's day


def _orderer(email_addr: str, region: str = "Region Halland", *, valid_from: date | None = None,
             valid_to: date | None = None) -> dict:
    return {"email": email_addr, "name": email_addr.split("@")[0].replace(".", " ").title(), "region": region,
            "valid_from": (valid_from or TODAY - timedelta(days=30)).isoformat(),
            "valid_to": valid_to.isoformat() if valid_to else None}


class Bot:
    """A bot on a Dovecot account whose outbox sends to the aiosmtpd server; both packs enabled."""

    def __init__(self, tmp_path, account, smtp_server):
        self.config = config_mod.from_mapping({
            "store": {"path": "intake.db"},
            "mailbox": {"kind": "imap", "host": account.server.host, "port": account.server.port,
                        "username": account.username, "tls": "none", "timeout": 5,
                        "default_routine": "symtombedomning"},
            "routines": {"enabled": ["mittvaccin", "symtombedomning"]},
            "outbox": {"kind": "smtp"},
            "smtp": {"host": smtp_server.host, "port": smtp_server.port, "tls": "none", "timeout": 5},
            "replies": {"from_address": FROM},
        }, base_dir=tmp_path, env=env_for(account))
        self.account, self.server = account, smtp_server
        self.store, self.routines = open_app(self.config)
        self.routine = choose_routine(self.routines, None)
        self.outbox = Outbox(self.store, smtp_transport(self.config), from_address=FROM)

    def orderer(self, **kw) -> int:
        return add_orderer(self.store, self.routine, _orderer(**kw), actor="admin")[0]

    def poll(self):
        return make_poller(self.config, self.store, self.routines).poll_once()

    def received(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(m.data, policy=email.policy.default) for m in self.server.messages]

    def verdict_of(self, message_id: str) -> tuple[str, list[str]]:
        import json

        row = next(self.store.db.query("select verdict, reasons from messages where message_id = ?", [message_id]))
        return row["verdict"], [r["code"] for r in json.loads(row["reasons"] or "[]")]


@pytest.fixture
def bot(tmp_path, imap_account, smtp_server):
    bot = Bot(tmp_path, imap_account, smtp_server)
    bot.orderer(email_addr=ORDERER_EMAIL)  # Region Halland, valid
    bot.orderer(email_addr="petra.skane@region-skane.example.test", region="Region Skåne")
    bot.orderer(email_addr="erik.gammal@region-halland.example.test", valid_to=TODAY - timedelta(days=1))
    return bot


def test_only_authorised_orderers_get_a_ticket_and_the_completion_mail_counts_without_names(bot, tmp_path):
    mails = {
        "authorised": order_mail(tmp_path / "a", message_id="<authorised@test>"),
        "unknown sender": order_mail(tmp_path / "b", sender="Okänd <okand.avsandare@example.test>",
                                     message_id="<unknown@test>"),
        "unauthorised orderer in the form": order_mail(
            tmp_path / "c", message_id="<orderer@test>",
            fields={**FIELDS, "bestallare_namn": "Nils Nobody", "bestallare_epost": "nils.nobody@example.test"}),
        "orderer of another region": order_mail(
            tmp_path / "d", sender="Petra <petra.skane@region-skane.example.test>", message_id="<region@test>",
            fields={**FIELDS, "bestallare_namn": "Petra", "bestallare_epost": "petra.skane@region-skane.example.test"}),
        "validity ended": order_mail(
            tmp_path / "e", sender="Erik <erik.gammal@region-halland.example.test>", message_id="<ended@test>",
            fields={**FIELDS, "bestallare_namn": "Erik",
                    "bestallare_epost": "erik.gammal@region-halland.example.test"}),
    }
    for raw in mails.values():
        bot.account.append(raw)

    result = bot.poll()
    assert result.recorded == 5 and not result.errors
    assert bot.verdict_of("<authorised@test>") == ("accepted", [])
    for mid in ("<unknown@test>", "<orderer@test>", "<region@test>", "<ended@test>"):
        assert bot.verdict_of(mid) == ("rejected", ["sender.not_authorised"]), mid
    assert bot.account.uids("INBOX") == []
    assert len(bot.account.uids("Intake/Accepted")) == 1 and len(bot.account.uids("Intake/Rejected")) == 4

    assert bot.outbox.send_due().sent == 5
    [ticket] = bot.store.tickets()
    assert ticket["ref"].startswith("SB-") and ticket["routine"] == "symtombedomning"
    acks = [m for m in bot.received() if ticket["ref"] in m["Subject"]]
    rejections = [m for m in bot.received() if ticket["ref"] not in m["Subject"]]
    assert [m["To"] for m in acks] == [ORDERER_EMAIL]
    assert "Antal personer i blanketten: 3" in acks[0].get_content()
    # The four refused: the unknown sender, the authorised sender naming an unauthorised orderer, the orderer
    # of another region and the one whose validity ended. Each is told who may order and how to become one,
    # never whose address was refused or in which register.
    assert sorted(m["To"] for m in rejections) == sorted([
        "okand.avsandare@example.test", ORDERER_EMAIL, "petra.skane@region-skane.example.test",
        "erik.gammal@region-halland.example.test"])
    for reply in rejections:
        body = reply.get_content()
        assert reply["Subject"] == f"SV: {ORDER}"
        assert "bara regionens utsedda beställare" in body and "anmäla dig till supporten" in body
        assert "@" not in body and "nils" not in body.lower() and "Region Halland" not in body

    # A handler closes the ticket: the completion mail says how many persons and roles, no names.
    desk = TicketDesk(bot.store, bot.routines, Settings.from_config(bot.config))
    desk.mark_done(ticket["ref"], "anna")
    assert bot.outbox.send_due().sent == 1
    done = bot.received()[-1]
    assert done["Subject"] == f"Utfört: {ORDER} [{ticket['ref']}]" and done["To"] == ORDERER_EMAIL
    body = done.get_content()
    assert "Hanterat: 3 personer, 6 behörigheter." in body
    assert "Tillagt: 3 behörigheter för 2 personer." in body
    assert "Borttaget: 3 behörigheter för 1 person." in body
    for person in PERSONS:
        assert person["namn"] not in body and person["hsa_id"] not in body and person["epost"] not in body
    assert "Dashboard" not in body


def test_a_cancellation_by_an_authorised_orderer_counts_removals_only(bot, tmp_path):
    removed = [{**p, "atgard": "Ta bort"} for p in PERSONS[:2]]
    bot.account.append(order_mail(tmp_path, subject=CANCEL, sender=ORDERER, persons=removed,
                                  message_id="<cancel@test>"))
    bot.poll()
    assert bot.verdict_of("<cancel@test>") == ("accepted", [])
    [ticket] = bot.store.tickets()
    assert ticket["queue"] == "avbestallning"
    TicketDesk(bot.store, bot.routines, Settings.from_config(bot.config)).mark_done(ticket["ref"], "anna")
    assert bot.outbox.send_due().sent == 2
    body = bot.received()[-1].get_content()
    assert "Hanterat: 2 personer, 3 behörigheter." in body and "Borttaget: 3 behörigheter för 2 personer." in body
    assert "Tillagt" not in body
