"""The outgoing mail as bytes: what a requester's client reads back, and standard limits it relies on."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from intake.replies import build_message, message_bytes

LONG_ID = "<intake." + "a" * 90 + "@region.example.test>"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SUBJECTS = [
    "SV: MittVaccin – användarstöd [MV-2026-0001]",
    "SV: MittVaccin – Behörighet avslut [MV-2026-0001] " + "långt ämne " * 12 + "slut",
    "Plain ASCII subject [MV-2026-0001]",
]


def _reply(subject: str, *, to: str = "eva.berg@halmstad.example.test", attachments=None):
    return build_message(to=to, subject=subject, body="Hej!\nVi återkommer.\n" * 3,
                         from_address="mittvaccin@region.example.test",
                         from_name="Läkemedelssupporten, Region Halland", message_id=LONG_ID,
                         in_reply_to=LONG_ID, references=[LONG_ID, "<b" + "c" * 70 + "@x.example.test>"],
                         attachments=attachments)


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("forms", [0, 2])
def test_a_reply_reads_back_as_written_within_the_standards_limits(subject, forms):
    files = [(f"blankett-{i}.xlsx", bytes(range(256)) * 40, XLSX) for i in range(forms)]
    msg = _reply(subject, attachments=files)
    raw = message_bytes(msg)
    assert raw == msg.as_bytes()  # the fast serialiser writes exactly the standard library's bytes
    text = raw.decode("ascii")
    words = re.findall(r"=\?[^?]+\?[bqBQ]\?[^?]*\?=", text)
    assert all(len(w) <= 75 for w in words)  # RFC 2047
    lines = text.split("\r\n")
    assert any(line.startswith("Message-ID: <intake.") for line in lines)  # not folded away from its name
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back["Subject"] == subject
    assert back["From"].addresses[0].display_name == "Läkemedelssupporten, Region Halland"
    assert back["Auto-Submitted"] == "auto-replied"
    assert [(p.get_filename(), p.get_content()) for p in back.iter_attachments()] == [(n, d) for n, d, _ in files]
    assert "Vi återkommer." in back.get_body(("plain",)).get_content()


def test_each_reply_with_forms_has_its_own_boundary():
    files = [("blankett.xlsx", b"PK" * 100, XLSX)]
    one, two = (_reply(SUBJECTS[0], attachments=files) for _ in range(2))
    assert one.get_boundary() != two.get_boundary()


def test_an_internationalised_address_is_written_in_utf8_headers():
    msg = _reply(SUBJECTS[0], to="frånvaro.svarare@falkenberg.example.test")
    raw = msg.as_bytes(policy=email.policy.SMTPUTF8)  # as smtplib sends it to a server offering SMTPUTF8
    assert "To: frånvaro.svarare@falkenberg.example.test".encode() in raw  # not an RFC 2047 word: an address


def test_plain_headers_are_written_as_the_header_class_would_write_them():
    """The reply policy writes short printable ASCII header values itself; the standard header class must
    agree on every such value, whatever its words (semicolons, commas, encoded-word look-alikes)."""
    import random

    from intake.replies import _POLICY

    rng = random.Random(20261130)
    alphabet = [chr(c) for c in range(33, 127)]
    values = ["<a@b>", "auto-replied", "All", 'attachment; filename="blankett.xlsx"',
              'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', "=?utf-8?q?x?=", "1.0"]
    for _ in range(3000):
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(rng.randint(1, 9))]
        values.append(" ".join(words))
    for name in ("Content-Type", "Content-Disposition", "References", "Message-ID", "X-Auto-Response-Suppress"):
        for value in values:
            mine = _POLICY._fold(name, value, True)
            standard = email.policy.Compat32._fold(_POLICY, name, value, True)
            assert mine == standard, (name, value)
