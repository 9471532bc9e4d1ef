"""Measure rules.personal_data on the labelled corpus in fixtures/personal_data/corpus.jsonl.

Usage:  .venv/bin/python scripts/pd_corpus.py [--verbose]

Prints recall per category on the snippets with personal data (a snippet is "caught" when a
finding of its category reaches the hold threshold, "rejected" when it reaches the reject
threshold), the false-positive rate per category on the look-alikes, and the name figures.
--verbose lists the ids of misses and false positives (ids only: the corpus is test data, but the
habit of never printing values stays). Exit status 1 when an identity number is missed or a
look-alike is flagged: the corpus goals.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.personal_data import CATEGORIES, PersonalDataConfig, scan  # noqa: E402

CORPUS = ROOT / "fixtures" / "personal_data" / "corpus.jsonl"
# Written blind to the detector (see HOLDOUT.md): the honest measure of how it generalises.
HOLDOUT = ROOT / "fixtures" / "personal_data" / "holdout.jsonl"
HOLDOUT2 = ROOT / "fixtures" / "personal_data" / "holdout2.jsonl"
# The corpus is judged as of a fixed day, so that its timestamps and dates keep their meaning.
CORPUS_TODAY = date(2026, 11, 24)
IDENTITY = ("personnummer", "samordningsnummer", "reservnummer", "hsa_id")
PLAIN_BODY = "Hej!\nSe bifogad blankett.\n\nMed vänlig hälsning\nLäkemedelssupporten"


def load(path: Path = CORPUS) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def run_one(record: dict, config: PersonalDataConfig) -> list:
    subject, body = (record["text"], PLAIN_BODY) if record["in_subject"] else ("MittVaccin – Behörighet",
                                                                              record["text"])
    findings = scan(subject, body, sender_name=record.get("sender_name", ""),
                    sender_address=record.get("sender_address", ""), today=CORPUS_TODAY, config=config)
    where = "subject" if record["in_subject"] else "body"
    return [f for f in findings if f.location == where]


@dataclass
class Figures:
    positives: Counter = field(default_factory=Counter)
    caught: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    negatives: int = 0
    false_pos: Counter = field(default_factory=Counter)  # look-alikes with a finding of this category
    flagged_neg: int = 0  # look-alikes with any finding
    misses: list[str] = field(default_factory=list)
    fp_ids: list[str] = field(default_factory=list)

    def goals_met(self) -> bool:
        missed_identity = any(self.caught[c] < self.positives[c] for c in IDENTITY)
        return not missed_identity and self.flagged_neg == 0


def measure(records: list[dict], config: PersonalDataConfig | None = None) -> Figures:
    config = config or PersonalDataConfig()
    fig = Figures()
    for r in records:
        findings = run_one(r, config)
        if r["category"]:
            cat = r["category"]
            fig.positives[cat] += 1
            hits = [f for f in findings if f.category == cat]
            if hits:
                fig.caught[cat] += 1
                if max(f.score for f in hits) >= config.reject_threshold:
                    fig.rejected[cat] += 1
            else:
                fig.misses.append(r["id"])
        else:
            fig.negatives += 1
            if findings:
                fig.flagged_neg += 1
                fig.fp_ids.append(r["id"])
            for cat in {f.category for f in findings}:
                fig.false_pos[cat] += 1
    return fig


def report(fig: Figures, verbose: bool = False) -> str:
    out = [f"corpus: {sum(fig.positives.values())} snippets with personal data, {fig.negatives} look-alikes",
           "", f"{'category':<18}{'n':>5}{'caught':>9}{'recall':>9}{'rejected':>10}{'FP':>5}{'FP rate':>9}"]
    for cat in CATEGORIES:
        n = fig.positives[cat]
        recall = fig.caught[cat] / n if n else float("nan")
        fp_rate = fig.false_pos[cat] / fig.negatives if fig.negatives else float("nan")
        out.append(f"{cat:<18}{n:>5}{fig.caught[cat]:>9}{recall:>9.1%}{fig.rejected[cat]:>10}"
                   f"{fig.false_pos[cat]:>5}{fp_rate:>9.1%}")
    total_pos = sum(fig.positives.values())
    out += ["", f"all: recall {sum(fig.caught.values()) / total_pos:.1%}, "
                f"look-alikes flagged {fig.flagged_neg}/{fig.negatives} ({fig.flagged_neg / fig.negatives:.1%})"]
    n_names = fig.positives["name"]
    if n_names:
        prec_den = fig.caught["name"] + fig.false_pos["name"]
        out.append(f"names: {fig.caught['name']}/{n_names} caught ({fig.caught['name'] / n_names:.1%}), "
                   f"{fig.rejected['name']} at reject level, {fig.false_pos['name']} false positives, "
                   f"precision {fig.caught['name'] / prec_den if prec_den else 1:.1%}")
    out.append(f"goals (every identity number caught, no look-alike flagged): "
               f"{'met' if fig.goals_met() else 'NOT met'}")
    if verbose:
        out += [f"missed: {', '.join(fig.misses) or '-'}", f"false positives: {', '.join(fig.fp_ids) or '-'}"]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    verbose = "--verbose" in argv
    fig = measure(load())
    print("== development corpus (written with the detector) ==")
    print(report(fig, verbose=verbose))
    for title, path in (("held-out corpus 1", HOLDOUT), ("held-out corpus 2", HOLDOUT2)):
        if path.exists():
            print(f"\n== {title} (written blind to the detector; measured, never tuned on) ==")
            print(report(measure(load(path)), verbose=verbose))
    return 0 if fig.goals_met() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
