"""The access register at a region's size: lookups by identifier, a unit's list, a done ticket fed in.

Usage:  .venv/bin/python benchmarks/bench_register.py [--persons N]

Fills a fresh database with N persons (default 20,000; made-up person HSA-ids) holding two entries each
across 40 units and 6 municipalities, then prints the time of: an exact search by identifier (HMAC + indexed
lookup), the same search done the naive way (decrypting every stored identifier, what an encrypted-only
design would need), and listing one unit with its names decrypted. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intake.register import RegisterFilters, RegisterKeys, person_id_for  # noqa: E402
from intake.store import open_store  # noqa: E402


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=20_000)
    args = ap.parse_args()
    keys = RegisterKeys(b"k" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.db")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        ids = [f"SE2321000131-P{i:012d}" for i in range(args.persons)]
        t = time.perf_counter()
        with store.transaction():
            for i, ident in enumerate(ids):
                pid = person_id_for(store, keys, ident, "hsa_id", f"Person {i}", now)
                for role in ("Vaccinatör", "Läsbehörighet"):
                    store.register_add_entry({
                        "person_id": pid, "routine": "mittvaccin", "system": "MittVaccin", "role": role,
                        "unit": f"Enhet {i % 40}", "municipality": f"Kommun {i % 6}", "valid_from": "2026-01-01",
                        "state": "active", "source": "ticket", "created_at": now, "updated_at": now})
        fill = time.perf_counter() - t
        target = ids[len(ids) // 2]
        by_hash = best(lambda: store.register_person_by_hash(keys.lookup_hash(target)))
        rows = list(store.db.query("select id, id_enc from register_persons"))
        naive = best(lambda: next(r for r in rows if keys.decrypt(r["id_enc"]) == target), repeat=1)
        unit = best(lambda: [keys.decrypt(r["name_enc"]) for r in store.register_entries(
            RegisterFilters(unit="Enhet 7"), "2026-06-01")])
        print(f"persons: {args.persons}, entries: {2 * args.persons}; fill: {fill:.1f} s")
        print(f"search by identifier, keyed hash + index: {by_hash * 1e3:8.3f} ms")
        print(f"search by identifier, decrypt every row:  {naive * 1e3:8.1f} ms  "
              f"({naive / by_hash:,.0f}x slower)")
        print(f"one unit listed and decrypted ({2 * args.persons // 40} entries): {unit * 1e3:8.1f} ms")
        store.db.conn.close()


if __name__ == "__main__":
    main()
