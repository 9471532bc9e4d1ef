"""The body hash that tells a re-delivery from a reused Message-ID: same value as before, without copying the mail."""

from __future__ import annotations

import hashlib
import random
import tracemalloc

import pytest

import intake.decision as decision
from intake.decision import content_hash


def _as_before(raw: bytes) -> str:
    """The definition (the hash before it was computed in slices)."""
    body = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)
    return hashlib.sha256(body[1].rstrip() if len(body) > 1 else b"").hexdigest()


@pytest.mark.parametrize("slice_bytes", [1, 2, 3, 7, 1 << 20])
def test_the_hash_in_slices_is_the_hash_of_the_normalised_body(monkeypatch, slice_bytes):
    monkeypatch.setattr(decision, "_HASH_SLICE", slice_bytes)
    rng = random.Random(slice_bytes)
    for _ in range(3000):
        # Line ends of every kind, bare CRs, blank lines and trailing whitespace are where a slip would show.
        raw = bytes(rng.choice(b"ab\r\n \t\x0b") for _ in range(rng.randrange(0, 48)))
        assert content_hash(raw) == _as_before(raw), raw


def test_a_redelivered_mail_hashes_alike_and_another_body_does_not():
    mail = b"Received: a\r\nSubject: x\r\n\r\nHej!\r\nRad tv\xc3\xa5\r\n\r\n"
    assert content_hash(b"Received: b\r\n" + mail) == content_hash(mail)
    assert content_hash(mail.replace(b"\r\n", b"\n")) == content_hash(mail)
    assert content_hash(mail.replace(b"Hej!", b"Hej?")) != content_hash(mail)


def test_hashing_a_large_mail_does_not_copy_it():
    raw = b"Subject: x\r\n\r\n" + b"QUJD" * 19 + b"\r\n" + (b"QUJD" * 19 + b"\r\n") * 250_000 + b"\r\n \r\n"
    tracemalloc.start()
    try:
        digest = content_hash(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == _as_before(raw)
    assert peak < 3 * 2**20 < len(raw) // 5  # slices of 1 MB, never the mail (before: three copies of it)
