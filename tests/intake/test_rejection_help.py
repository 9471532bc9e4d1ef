"""Rejections that unstick the sender: when a mail whose subject fits no routine probably meant a form
routine, its rejection brings the blank form (the wording is pinned by the reply snapshots)."""

from __future__ import annotations

from intake.mailer import meant_a_form
from intake.pipeline import Settings, decide
from tests.mailmaker import make_mail


def test_a_subject_naming_a_form_request_brings_the_blank_form(routines):
    settings = Settings(from_address="mittvaccin@region.example.test")
    meant = decide(make_mail(subject="Behörighet till vaccinationssystemet"), routines, settings=settings)
    plain = decide(make_mail(subject="Hej, en fråga"), routines, settings=settings)
    assert meant.codes == ["subject.unknown"] and plain.codes == ["subject.unknown"]
    [routine] = [r for r in routines if r.id == "mittvaccin"]
    assert meant_a_form(routine, meant) and meant.reply.attach_blank_form
    assert not meant_a_form(routine, plain) and not plain.reply.attach_blank_form
