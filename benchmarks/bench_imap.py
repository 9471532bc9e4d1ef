"""Intake against the raw-fetch floor, side by side, on the same Dovecot mailbox and the same mails.

    .venv/bin/python benchmarks/bench_imap.py [--n 200] [--repeat 3] [--profile intake.prof]

Starts a throwaway Dovecot on loopback (as the IMAP tests do), generates the corpus
(:mod:`benchmarks.corpus`, fixed seed), and for each repeat loads the same mails into an emptied INBOX
before each contestant; contestants alternate (floor, intake, floor, intake, ...). Each contestant is
its own process run under GNU ``/usr/bin/time``: wall time includes start-up and imports; CPU and peak
RSS are those of the process and its children (Dovecot's own CPU is not counted). The table shows
medians over the repeats and the ratio intake / floor.

- floor: imapclient; UID SEARCH ALL; ``BODY.PEEK[]`` in batches of 100; ``email`` parse with
  ``policy.default``, body text and every attachment decoded; MOVE of each batch to ``Processed``.
- intake: ``intake -c CONFIG poll --once`` with a fresh store, a file outbox and the first-import guard
  off (``replies.max_age_days = 0``: the corpus is appended with an old INTERNALDATE, and a live
  deployment sees fresh mail, so every reply is rendered and queued, then written to the outbox).

``--profile FILE`` runs intake once more under cProfile (same mailbox, same corpus) and prints the top
functions by cumulative and by own time. Figures only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from benchmarks.corpus import BASE_TIME, describe, make_corpus  # noqa: E402

TIME = "/usr/bin/time"
INTAKE_CONFIG = """\
[store]
path = "intake.db"

[mailbox]
kind = "imap"
host = "{host}"
port = {port}
username = "{user}"
password = "{password}"
tls = "none"

[replies]
from_address = "mittvaccin-support@example.test"
max_age_days = 0

[outbox]
kind = "file"
dir = "outbox"
"""
PROFILE_RUNNER = """\
import cProfile, sys
from intake.cli import main
out = sys.argv[1]
sys.argv = ["intake", *sys.argv[2:]]
cProfile.run("main(standalone_mode=False)", out)
"""

def connect(host: str, port: int, user: str, password: str) -> IMAPClient:
    client = IMAPClient(host, port=port, ssl=False, timeout=120)
    client.login(user, password)
    return client


# -- the floor (runs in its own process) ------------------------------------------------------------


def floor_worker(host: str, port: int, user: str, password: str) -> None:
    """UID SEARCH ALL, BODY.PEEK[] by 100, parse body and attachments, MOVE each batch; prints counts."""
    counts = {"parsed": 0, "attachments": 0, "attachment_bytes": 0, "body_chars": 0}
    with connect(host, port, user, password) as client:
        if not client.folder_exists("Processed"):
            client.create_folder("Processed")
        client.select_folder("INBOX")
        uids = client.search("ALL")
        for start in range(0, len(uids), 100):
            batch = uids[start:start + 100]
            for data in client.fetch(batch, ["BODY.PEEK[]"]).values():
                msg = email.message_from_bytes(data[b"BODY[]"], policy=policy.default)
                body = msg.get_body(("plain", "html"))
                counts["body_chars"] += len(body.get_content()) if body is not None else 0
                for part in msg.iter_attachments():
                    counts["attachments"] += 1
                    counts["attachment_bytes"] += len(part.get_content())
                counts["parsed"] += 1
            client.move(batch, "Processed")
    print(json.dumps(counts))


# -- the mailbox ----------------------------------------------------------------------------------


def _selectable(flags: tuple[bytes, ...]) -> bool:
    return not any(f.lower() in (b"\\noselect", b"\\nonexistent") for f in flags)


def load_mailbox(account, corpus: list[bytes]) -> None:
    """Every folder but INBOX deleted (children first), INBOX emptied, the corpus appended by 100."""
    with account.client() as client:
        folders = [(f, name) for f, _sep, name in client.list_folders() if name.upper() != "INBOX"]
        for flags, name in sorted(folders, key=lambda fn: -fn[1].count("/")):
            if _selectable(flags):
                client.delete_folder(name)
        client.select_folder("INBOX")
        if old := client.search("ALL"):
            client.delete_messages(old)
            client.expunge()
        client.close_folder()
        for start in range(0, len(corpus), 100):
            client.multiappend("INBOX", [{"msg": m, "date": BASE_TIME} for m in corpus[start:start + 100]])
        got = client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"]
    if got != len(corpus):
        raise RuntimeError(f"INBOX holds {got} mails after loading {len(corpus)}")


def folder_counts(account) -> dict[str, int]:
    with account.client() as client:
        return {name: client.folder_status(name, [b"MESSAGES"])[b"MESSAGES"]
                for flags, _sep, name in client.list_folders() if _selectable(flags)}


# -- measuring ------------------------------------------------------------------------------------


def measure(argv: list[str], timeout: float, **popen) -> dict:
    """Run ``argv`` under GNU time: wall seconds, CPU seconds and peak RSS of it and its children.

    Not ``wait4`` on a direct child: Linux carries the parent's RSS high-water mark across fork and
    exec, so every contestant would report at least this script's own peak (it holds the corpus).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        start = time.perf_counter()
        proc = subprocess.Popen([TIME, "-f", "%M %U %S", "-o", stats.name, "--", *argv],
                                start_new_session=True, **popen)
        killer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        killer.start()
        try:
            rc = proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        fields = (stats.read().strip().splitlines() or ["0 0 0"])[-1].split()
    rss_kb, user_s, sys_s = (float(x) for x in fields) if len(fields) == 3 else (0.0, 0.0, 0.0)
    return {"wall_s": wall, "cpu_s": user_s + sys_s, "rss_mb": rss_kb / 1024, "rc": rc}


def run_floor(account, work: Path, timeout: float) -> dict:
    out = work / "floor.out"
    argv = [sys.executable, __file__, "floor-worker", account.server.host, str(account.server.port),
            account.username, account.password]
    with open(out, "w") as fh:
        res = measure(argv, timeout, stdout=fh, stderr=subprocess.STDOUT)
    lines = out.read_text().strip().splitlines()
    res["processed"] = json.loads(lines[-1])["parsed"] if res["rc"] == 0 and lines else 0
    return res


def intake_argv(config: Path) -> list[str]:
    return [str(Path(sys.executable).with_name("intake")), "-c", str(config), "poll", "--once"]


def write_intake_config(account, work: Path) -> Path:
    config = work / "intake.toml"
    config.write_text(INTAKE_CONFIG.format(host=account.server.host, port=account.server.port,
                                           user=account.username, password=account.password))
    return config


def run_intake(account, work: Path, timeout: float) -> dict:
    config = write_intake_config(account, work)
    with open(work / "intake.out", "w") as fh:
        res = measure(intake_argv(config), timeout, cwd=work, stdout=fh, stderr=subprocess.STDOUT)
    db = sqlite3.connect(work / "intake.db")
    try:
        res["processed"] = db.execute("select count(*) from messages").fetchone()[0]
        res["verdicts"] = dict(db.execute("select verdict, count(*) from messages group by verdict").fetchall())
        res["replies"] = db.execute("select count(*) from outbox").fetchone()[0]
    finally:
        db.close()
    res["outbox_files"] = len(list((work / "outbox").glob("*"))) if (work / "outbox").exists() else 0
    return res


def profile_intake(account, corpus: list[bytes], work: Path, out: Path, timeout: float) -> None:
    """One more intake run under cProfile; prints the top 15 by cumulative time."""
    import pstats

    load_mailbox(account, corpus)
    (work / "profile").mkdir()
    config = write_intake_config(account, work / "profile")
    argv = [sys.executable, "-c", PROFILE_RUNNER, str(out.resolve()), "-c", str(config), "poll", "--once"]
    start = time.perf_counter()
    subprocess.run(argv, cwd=work / "profile", check=False, timeout=timeout, capture_output=True)
    print(f"\nintake under cProfile: {time.perf_counter() - start:.1f} s wall; profile in {out}")
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(r"intake|parsers|rules|imapclient|sqlite|jinja2|openpyxl|email", 25)
    stats.sort_stats("tottime").print_stats(15)


# -- the report -----------------------------------------------------------------------------------


def summarise(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "cpu_s", "rss_mb")} | {
        "runs": len(runs), "processed": min(r["processed"] for r in runs),
        "failed": sum(r["rc"] != 0 for r in runs), "wall_min": min(r["wall_s"] for r in runs),
        "wall_max": max(r["wall_s"] for r in runs)}


def table(n: int, summary: dict[str, dict]) -> str:
    head = f"{'contestant':12}{'runs':>5}{'processed':>10}{'wall s':>9}{'min-max':>14}{'CPU s':>8}{'peak RSS MB':>12}"
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        spread = f"{s['wall_min']:.1f}-{s['wall_max']:.1f}"
        lines.append(f"{name:12}{s['runs']:>5}{s['processed']:>10}{s['wall_s']:>9.2f}{spread:>14}"
                     f"{s['cpu_s']:>8.2f}{s['rss_mb']:>12.1f}" + ("  (failed runs!)" if s["failed"] else ""))
    if "floor" in summary and "intake" in summary:
        f, i = summary["floor"], summary["intake"]
        lines.append(f"\nintake / floor on {n} mails: wall {i['wall_s'] / f['wall_s']:.1f}x, "
                     f"CPU {i['cpu_s'] / max(f['cpu_s'], 0.01):.1f}x, peak RSS {i['rss_mb'] / f['rss_mb']:.1f}x "
                     f"(target: wall <= 2x)")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "floor-worker":
        return floor_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="mails in the corpus (default 200; the issue used 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per contestant (default 3)")
    parser.add_argument("--only", default="floor,intake", help="comma list of contestants (default both)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before a contestant is killed")
    parser.add_argument("--profile", type=Path, help="also run intake once under cProfile, saving to this file")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    if not os.access(TIME, os.X_OK):
        sys.exit(f"needs GNU time at {TIME}: run scripts/install-test-deps (installs the Debian package `time`)")

    from tests.dovecot import DovecotServer

    corpus = make_corpus(args.n)
    print(f"corpus: {describe(corpus)}", flush=True)
    contestants = {"floor": run_floor, "intake": run_intake}
    contestants = {name: run for name, run in contestants.items() if name in args.only.split(",")}
    server = DovecotServer()
    work = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    runs: list[dict] = []
    try:
        server.start()
        account = server.new_account("bench-secret")
        for k in range(1, args.repeat + 1):
            for name, run in contestants.items():
                load_mailbox(account, corpus)
                (folder := work / f"{name}-{k}").mkdir()
                res = {"contestant": name, "run": k, **run(account, folder, args.timeout)}
                res["left_in_inbox"] = folder_counts(account).get("INBOX", 0)
                runs.append(res)
                shown = {key: round(v, 2) if isinstance(v, float) else v for key, v in res.items()}
                print(f"  {json.dumps(shown, ensure_ascii=False)}", flush=True)
        summary = {name: summarise([r for r in runs if r["contestant"] == name]) for name in contestants}
        print()
        print(table(args.n, summary))
        if args.profile:
            profile_intake(account, corpus, work, args.profile, args.timeout)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "corpus": describe(corpus), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
