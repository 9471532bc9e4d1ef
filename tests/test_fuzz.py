"""A seeded, bounded mutation run over the fixture mails and forms (issue 10.9).

Every fixture mail, and a few hundred mutated copies of the fixture mails and forms (see
``scripts/fuzz.py`` for the mutations), go through the real ``decide``: the form sandbox, the
personal-data scan and the reply templates included. For each mail: no exception escapes, the
decision does not come from a catch-all (a ``mail.unparseable`` whose detail starts "parser error:",
"rule error:", "mail-parser error:" or "header parser error:", see ``scripts.fuzz.is_last_resort``; every
known class of broken input has a reason of its own), and it
takes less than a generous time cap (a safety bound against hangs, not a speed test). The seed is
fixed, so a failure names a mail that can be made again: ``python scripts/fuzz.py --n N --seed S
--verbose`` lists the seed file and mutations of each failure. ``make fuzz`` runs 10,000.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from intake.pipeline import Settings, decide
from scripts.fuzz import MAX_SECONDS_PER_MAIL, is_last_resort, mutated_mails, seed_forms, seed_mails
from tests.conftest import NOW

pytestmark = pytest.mark.fuzz

SEED = 20261130
#: About a minute of CPU on a 2-core machine: most of it is the form sandbox starting interpreters.
MUTATED = 320
FORMS_SHARE = 0.25


class MailTimeout(BaseException):
    """Raised by the alarm; a BaseException so that decide's own catch-all cannot swallow it."""


def _alarm(_signum, _frame):
    raise MailTimeout


def _judge_all(mails, routines):
    settings = Settings(from_address="mittvaccin@region.example.test")
    failures, codes = [], Counter()
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for label, raw in mails:
            started = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, MAX_SECONDS_PER_MAIL)
            try:
                decision = decide(raw, routines, settings=settings, now=NOW, received=NOW)
            except MailTimeout:
                failures.append((label, f"took more than {MAX_SECONDS_PER_MAIL:g} s"))
                continue
            except Exception as exc:  # noqa: BLE001 - the point of the test: name it, do not stop
                failures.append((label, f"raised {type(exc).__name__}"))
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if is_last_resort(decision):
                failures.append((label, decision.reasons[0].detail))
            codes.update(decision.codes or ["(none)"])
            assert time.monotonic() - started < MAX_SECONDS_PER_MAIL
    finally:
        signal.signal(signal.SIGALRM, previous)
    return failures, codes


def test_no_fixture_mail_reaches_the_last_resort_handler(routines):
    failures, _ = _judge_all(seed_mails(), routines)
    assert failures == []


def test_mutated_mails_and_forms_never_crash_never_reach_the_last_resort_and_stay_bounded(routines):
    mails = list(mutated_mails(MUTATED, SEED, FORMS_SHARE))
    forms = sum(1 for label, _ in mails if label.startswith("form:"))
    assert forms >= MUTATED * FORMS_SHARE / 2 and len(seed_forms()) >= 10  # the run covers both kinds
    failures, codes = _judge_all(mails, routines)
    assert failures == [], f"{len(failures)} of {len(mails)} mutated mails failed"
    # The mutations reach the classes they are meant to: broken, unsafe and damaged files, unreadable mail.
    for code in ("attachment.unsafe", "attachment.damaged", "mail.unparseable"):
        assert codes[code] > 0, code
