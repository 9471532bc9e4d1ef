"""A bot configured against a test Dovecot account, driven as a real ``intake`` subprocess or in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from intake import config as config_mod
from intake.app import make_poller, open_app


def write_config(tmp_path: Path, account, folder: str = "INBOX") -> Path:
    path = tmp_path / "intake.toml"
    lines = [
        "[store]", 'path = "intake.db"', "",
        "[mailbox]", 'kind = "imap"', f'host = "{account.server.host}"', f"port = {account.server.port}",
        f'username = "{account.username}"', f'folder = "{folder}"', 'tls = "none"', "timeout = 5", "batch_size = 4", "",
        "[outbox]", 'kind = "file"', 'dir = "outbox"', "",
        "[replies]", 'from_address = "mittvaccin@region.example.test"', "",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def env_for(account, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env["INTAKE_IMAP_PASSWORD"] = account.password
    env.update(more)
    return env


def run_intake(config_path: Path, account, *args: str, fault: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    env = env_for(account, **({"INTAKE_FAULT": fault} if fault else {}))
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", "-c", str(config_path), *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


def in_process_poller(config_path: Path, account):
    config = config_mod.load(config_path, env=env_for(account))
    store, routines = open_app(config)
    return store, make_poller(config, store, routines)
