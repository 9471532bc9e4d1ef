"""`intake run` as a real process: it polls on its schedule, a second instance refuses, SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from intake.cli import main
from tests.conftest import FIXTURES

DEMO = FIXTURES.parent / "intake" / "demo_mail"


def write_conf(tmp_path: Path) -> Path:
    (tmp_path / "box").mkdir()
    conf = tmp_path / "intake.toml"
    conf.write_text(
        '[store]\npath = "q.db"\n[mailbox]\nkind = "local"\npath = "box"\n[outbox]\ndir = "out"\n'
        '[poll]\ninterval_seconds = 1\n[replies]\nfrom_address = "bot@region.example.test"\n'
    )
    return conf


def intake(conf: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "intake.cli", "-c", str(conf), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_run_polls_refuses_a_second_instance_and_stops_on_sigterm(tmp_path):
    conf = write_conf(tmp_path)
    first = intake(conf, "run")
    try:
        assert wait_for(lambda: (tmp_path / "q.db.lock").exists())
        # Mail arriving while it runs is picked up by the schedule.
        shutil.copy(DEMO / "03-anvandarstod.eml", tmp_path / "box" / "a.eml")
        assert wait_for(lambda: not (tmp_path / "box" / "a.eml").exists())

        second = intake(conf, "run")
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert "already running on" in err
        assert "Traceback" not in err
        poll = intake(conf, "poll", "--once")
        _, err = poll.communicate(timeout=30)
        assert poll.returncode == 1 and "already running on" in err
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0
    assert "received SIGTERM" in err and "stopped" in err
    assert wait_for(lambda: any((tmp_path / "out").glob("*.eml")))


def test_queue_list_and_ticket_show(tmp_path):
    conf = write_conf(tmp_path)
    for path in sorted(DEMO.glob("*.eml")):
        shutil.copy(path, tmp_path / "box" / path.name)
    runner = CliRunner()
    assert runner.invoke(main, ["-c", str(conf), "poll", "--once"]).exit_code == 0
    listed = json.loads(runner.invoke(main, ["-c", str(conf), "queue", "list", "--json"]).output)
    assert [t["request_type"] for t in listed] == ["behorighet", "avslut", "anvandarstod"]
    ref = listed[0]["ref"]
    only_new = json.loads(runner.invoke(main, ["-c", str(conf), "queue", "list", "--queue", "avslut",
                                               "--json"]).output)
    assert [t["request_type"] for t in only_new] == ["avslut"]

    shown = runner.invoke(main, ["-c", str(conf), "ticket", "show", ref, "--json"])
    ticket = json.loads(shown.output)
    assert ticket["ref"] == ref and len(ticket["form"]["users"]) == 5
    assert [e["kind"] for e in ticket["events"]][:2] == ["ticket_created", "reply_queued"]

    missing = runner.invoke(main, ["-c", str(conf), "ticket", "show", "MV-1999-0001"])
    assert missing.exit_code == 1 and missing.output.strip() == "Error: no ticket MV-1999-0001"


def test_demo_prints_the_queue(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "MV-" in result.output and "attachment.missing" in result.output
    assert len(list((tmp_path / "demo" / "outbox").glob("*.eml"))) == 8


def test_forms_command_writes_the_blank_forms(tmp_path):
    result = CliRunner().invoke(main, ["forms", "mittvaccin", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".docx", ".xlsx"]


def test_send_refuses_while_another_process_owns_the_database(tmp_path):
    """Two senders at once would send the same due replies twice; the second one is refused."""
    from intake.config import load
    from intake.lock import InstanceLock

    conf = write_conf(tmp_path)
    config = load(conf)
    with InstanceLock(config.lock_path, str(config.db_path)):
        result = CliRunner().invoke(main, ["-c", str(conf), "send"])
    assert result.exit_code == 1
    assert "already running on" in result.output
    assert CliRunner().invoke(main, ["-c", str(conf), "send"]).exit_code == 0


def test_queue_list_pages_by_id_and_streams_everything_with_limit_zero(tmp_path):
    """`intake queue list` shows a page (--limit, default 50) and says how to get the next one (--after the
    last id); --limit 0 lists every ticket."""
    from intake.config import load
    from intake.store import open_store
    from tests.intake.test_tickets import seed_ticket

    conf = write_conf(tmp_path)
    store = open_store(load(conf).db_path)
    for i in range(1, 6):
        seed_ticket(store, ref=f"MV-2026-{i:04d}")

    def listed(*args: str) -> tuple[list[str], str]:
        result = CliRunner().invoke(main, ["-c", str(conf), "queue", "list", "--json", *args])
        assert result.exit_code == 0, result.output
        return [t["ref"] for t in json.loads(result.stdout)], result.stderr

    first, hint = listed("--limit", "2")
    assert first == ["MV-2026-0001", "MV-2026-0002"]
    after = hint.split("--after ")[1].split(")")[0]
    second, _ = listed("--limit", "2", "--after", after)
    assert second == ["MV-2026-0003", "MV-2026-0004"]
    last, hint = listed("--limit", "2", "--after", after.replace(after, str(int(after) + 2)))
    assert last == ["MV-2026-0005"] and hint == ""
    assert listed()[0] == listed("--limit", "0")[0] == [f"MV-2026-{i:04d}" for i in range(1, 6)]
    result = CliRunner().invoke(main, ["-c", str(conf), "queue", "list", "--limit", "0", "--status", "done"])
    assert result.exit_code == 0 and "(no tickets)" in result.output
