"""Prints what the lifecycle costs: the pure step, a step with its effects in the store, a due timer, and
what deciding saves now that a reply is rendered once (when queued) instead of twice. Figures only.

Run: .venv/bin/python benchmarks/bench_lifecycle.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intake.decision import Decision  # noqa: E402
from intake.desk import TicketDesk  # noqa: E402
from intake.engine import Engine  # noqa: E402
from intake.pipeline import Settings, decide  # noqa: E402
from intake.store import open_store  # noqa: E402
from rules.lifecycle import TicketFacts, advance  # noqa: E402
from rules.packs import _template_env, load_packs  # noqa: E402

DEMO = ROOT / "intake" / "demo_mail"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    routines = load_packs(["mittvaccin", "lifecycletest"], [ROOT / "tests" / "packs"])
    mv, lt = routines
    settings = Settings(from_address="bot@region.example.test")
    raw = (DEMO / "03-anvandarstod.eml").read_bytes()

    t_decide = timed(lambda: decide(raw, routines, settings=settings, now=T0), 200)
    reply = decide(raw, routines, settings=settings, now=T0).reply
    t_render = timed(reply.preview, 200)

    def render_as_before() -> None:
        # Before: a fresh template environment per mail, the subject compiled each time.
        env = _template_env(mv.path / "templates")
        rtype = mv.request_type("anvandarstod")
        ctx = {"routine": mv, "request_type": rtype, "ref": "MV-2026-0001", "user_count": 0, "reasons": (),
               "attach_form": False, "note": ""}
        env.get_template(rtype.ack_template).render(**ctx)
        env.from_string(mv.reply_subjects["ack"]).render(**ctx)

    t_before = timed(render_as_before, 200)
    print(f"decide (support mail):              {t_decide * 1e3:7.2f} ms")
    print(f"render a receipt, before:           {t_before * 1e3:7.2f} ms (twice per receipt: decide and record)")
    print(f"render a receipt, now:              {t_render * 1e3:7.2f} ms (once per mail, when queued)")
    print(f"decide + rendering, before / now:   {(t_decide + 2 * t_before) / (t_decide + t_render):.2f}x")

    facts = TicketFacts("in_progress", assignee="anna")
    t_adv = timed(lambda: advance(facts, "set_status", "handler", lt.lifecycle, T0, target="done"), 20000)
    print(f"advance() (gate + effects list):    {t_adv * 1e6:7.1f} µs")

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.db")
        engine = Engine(store, routines, settings, clock=lambda: T0)
        n = 300
        refs = []
        with store.transaction():
            for i in range(n):
                pk = store.insert_message({"message_key": f"k{i}", "verdict": "accepted", "recorded_at": "x",
                                           "sender": f"user{i}@kommun.example.test"})
                d = Decision(verdict="accepted", message_key=f"k{i}", sender=f"user{i}@kommun.example.test",
                             routine="lifecycletest", request_type="fraga", queue="fragor")
                refs.append(engine.create_ticket(d, pk, T0)[1])
        desk = TicketDesk(store, routines, settings, clock=lambda: T0)
        start = time.perf_counter()
        for ref in refs:
            desk.set_status(ref, "anna", "in_progress")
        t_step = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for ref in refs:
            desk.set_status(ref, "anna", "cancelled")  # a state change plus a mail, each its own transaction
        t_mail = (time.perf_counter() - start) / n
        print(f"desk step, no effects (1 txn):      {t_step * 1e3:7.2f} ms")
        print(f"desk step + one mail (1 txn):       {t_mail * 1e3:7.2f} ms")

        with store.transaction():
            for ref in refs:
                t = store.ticket(ref)
                store.update_ticket(t["id"], {"status": "waiting_for_third_party"})
                store.set_timer(t["id"], "expire", "expire", T0.isoformat(), "waiting_for_third_party", False,
                                T0.isoformat())
        later = Engine(store, routines, settings, clock=lambda: T0 + timedelta(minutes=1))
        start = time.perf_counter()
        fired = later.run_due_timers()
        t_timer = (time.perf_counter() - start) / max(fired, 1)
        print(f"due timer fired (step + mail, 1 txn each): {t_timer * 1e3:7.2f} ms ({fired} timers)")


if __name__ == "__main__":
    main()
