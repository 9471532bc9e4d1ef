"""Prints what checklists cost: loading the audionom pack with and without its checklists.toml, copying a
checklist onto a ticket, the facts every lifecycle step now loads (open checklist tasks), a tick, and a
handler's status step on a ticket with and without a checklist. Figures only, side by side.

Run: .venv/bin/python benchmarks/bench_checklists.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intake.checklists import ChecklistDesk  # noqa: E402
from intake.desk import TicketDesk  # noqa: E402
from intake.engine import Engine  # noqa: E402
from intake.pipeline import Settings  # noqa: E402
from intake.store import open_store  # noqa: E402
from rules.checklists import instantiate  # noqa: E402
from rules.packs import load_pack, load_packs  # noqa: E402

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FORM = {"kind": "new", "fields": {"yrke": "Audionom", "auditbase": True, "webpriva": False}, "users": [{}]}


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def ticket(store, routine: str, rtype: str, ref: str) -> dict:
    with store.transaction():
        tid = store.insert_ticket({"ref": ref, "routine": routine, "request_type": rtype, "queue": "bestallning",
                                   "status": "in_progress", "requester": "a@x.example.test", "form": json.dumps(FORM),
                                   "user_count": 1, "created_at": T0.isoformat(), "updated_at": T0.isoformat()})
    return store.ticket_by_id(tid)


def main() -> None:
    pack = ROOT / "rules" / "packs" / "audionom"
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "audionom"
        shutil.copytree(pack, bare)
        (bare / "checklists.toml").unlink()
        text = (bare / "pack.toml").read_text("utf-8").replace('on_enter = [{ effect = "start_checklist" }]', "")
        (bare / "pack.toml").write_text(text.replace('gates = [{ gate = "checklist_complete", override_by = '
                                                     '["admin"] }]', "").replace('gates = ["checklist_complete"]', ""))
        with_lists, without = timed(lambda: load_pack(pack), 20), timed(lambda: load_pack(bare), 20)
        print(f"load the audionom pack:            {with_lists * 1e3:7.2f} ms with checklists.toml, "
              f"{without * 1e3:7.2f} ms without ({with_lists / without:.2f}x)")

        routines = load_packs(["mittvaccin", "audionom"])
        aud = routines[1]
        tasks = aud.checklists.for_type("ny_anvandare")
        copy = timed(lambda: instantiate(tasks, FORM, aud.form_schema), 2000)
        print(f"instantiate one checklist (8 tasks): {copy * 1e6:7.1f} µs")

        store = open_store(Path(tmp) / "bench.db")
        settings = Settings(from_address="bot@region.example.test")
        engine = Engine(store, routines, settings, clock=lambda: T0)
        with_cl = ticket(store, "audionom", "ny_anvandare", "AUD-2026-0001")
        plain = ticket(store, "mittvaccin", "behorighet", "MV-2026-0001")
        with store.transaction():
            store.add_checklist(with_cl["id"], instantiate(tasks, FORM, aud.form_schema))
        f1, f2 = timed(lambda: engine.facts(with_cl), 2000), timed(lambda: engine.facts(plain), 2000)
        print(f"facts of a step (open tasks query): {f1 * 1e6:7.1f} µs with a checklist, {f2 * 1e6:7.1f} µs without")

        desk = ChecklistDesk(store, routines, settings, clock=lambda: T0)
        flip = iter(range(10**9))

        def tick() -> None:
            desk.act("AUD-2026-0001", "anna", "skat", "done" if next(flip) % 2 == 0 else "undo")

        print(f"tick or untick a task (one commit): {timed(tick, 200) * 1e3:7.2f} ms")
        handler = TicketDesk(store, routines, settings, clock=lambda: T0)

        def step(ref: str) -> None:
            handler.set_status(ref, "anna", "waiting")
            handler.set_status(ref, "anna", "in_progress")

        s1, s2 = timed(lambda: step("AUD-2026-0001"), 100) / 2, timed(lambda: step("MV-2026-0001"), 100) / 2
        print(f"a handler's status step:            {s1 * 1e3:7.2f} ms (audionom, checklist), {s2 * 1e3:7.2f} ms "
              f"(MittVaccin) ({s1 / s2:.2f}x)")


if __name__ == "__main__":
    main()
