"""Shared fixtures. Real servers come from the plugins: Dovecot (tests.dovecot), aiosmtpd (tests.smtpserver)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake.pipeline import Settings
from intake.store import open_store
from rules.packs import load_packs

pytest_plugins = ["tests.dovecot", "tests.smtpserver"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

#: A fixed "now" for decisions, so tests do not age with the calendar.
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def routines():
    return load_packs(["mittvaccin"])


@pytest.fixture(scope="session")
def routine(routines):
    return routines[0]


@pytest.fixture
def settings():
    return Settings(from_address="mittvaccin@region.example.test")


@pytest.fixture
def fresh_store(tmp_path):
    return open_store(tmp_path / "intake.db")
