"""Form parsers: real .xlsx/.docx files (generated blanks filled in, hand-made layouts, LibreOffice
re-saves) read into the fields and user rows they were filled with."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest

from parsers.formgrid import parse_date
from parsers.forms import ParsedForm, extract_form
from parsers.mail import Attachment
from parsers.sandbox import parse_in_process
from rules.forms import load_form_schema

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "fixtures" / "forms"
SCHEMA = load_form_schema(ROOT / "rules" / "packs" / "mittvaccin" / "form.toml")
EXPECTED = json.loads((FORMS / "expected.json").read_text("utf-8"))


def plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_reads_as_filled(name: str) -> None:
    want = EXPECTED[name]
    data = parse_in_process(want["format"], (FORMS / name).read_bytes(), SCHEMA)
    assert data.kinds_checked == [want["kind"]]
    got_fields = {k: plain(v) for k, v in data.fields.items() if v is not None}
    assert got_fields == {k: v for k, v in want["fields"].items() if v is not None}
    got_users = [{k: plain(v) for k, v in u.items() if v is not None} for u in data.users]
    assert got_users == [{k: v for k, v in u.items() if v is not None} for u in want["users"]]
    assert data.labels_found >= SCHEMA.min_labels


@pytest.mark.parametrize("name", ["filled/blank_new_1user.xlsx", "libreoffice/paragraphs_change.docx"])
def test_extract_form_uses_the_sandbox_and_gives_the_same_form(name: str) -> None:
    att = Attachment(Path(name).name, "application/octet-stream", (FORMS / name).read_bytes())
    outcome = extract_form([att], SCHEMA)
    assert outcome.problems == []
    assert outcome.attachment is att
    direct = extract_form([att], SCHEMA, sandbox=False)
    assert outcome.form == direct.form
    assert isinstance(outcome.form, ParsedForm)
    json.dumps(outcome.form.to_dict())  # JSON-able, dates as text


@pytest.mark.parametrize("name", ["blank/behorighet-it-system-mittvaccin-blankett-kommun.xlsx",
                                  "blank/behorighet-it-system-mittvaccin-blankett-kommun.docx"])
def test_blank_form_is_recognised_but_empty(name: str) -> None:
    fmt = name.rsplit(".", 1)[1]
    data = parse_in_process(fmt, (FORMS / name).read_bytes(), SCHEMA)
    assert data.kinds_checked == []
    assert data.users == []
    assert all(v is None for v in data.fields.values())
    assert data.labels_found >= SCHEMA.min_labels


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026-11-23", date(2026, 11, 23)),
        ("23/11/2026", date(2026, 11, 23)),
        ("23.11.2026", date(2026, 11, 23)),
        ("20261123", date(2026, 11, 23)),
        ("23 nov 2026", date(2026, 11, 23)),
        ("23 november 2026", date(2026, 11, 23)),
        ("1 maj 2027", date(2027, 5, 1)),
        ("2026-11-23 00:00:00", date(2026, 11, 23)),
        (20261123, date(2026, 11, 23)),
        (46349, date(2026, 11, 23)),  # an Excel serial left unformatted
        ("31/02/2026", None),
        ("snart", None),
        ("", None),
    ],
)
def test_dates_in_the_ways_people_write_them(text: object, want: date | None) -> None:
    assert parse_date(text) == want


def _xlsx(rows: list[list[object]], merges: tuple[str, ...] = ()) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    for m in merges:
        ws.merge_cells(m)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


ORG_ROWS = [["Kommun", "Hylte"], ["Förvaltning", "Omsorg"], ["Enhet", "Hemtjänst"]]
HEADER = ["Förnamn", "Efternamn", "Personnummer", "E-post", "Roll"]


@pytest.mark.parametrize(
    ("kind_rows", "want"),
    [
        ([["Nyupplägg", "x"], ["Förändring", ""], ["Avslut", ""]], ["new"]),
        ([["Nyupplägg", ""], ["Förändring", "Ja"], ["Avslut", "Nej"]], ["change"]),
        ([["☐", "Nyupplägg"], ["☐", "Förändring"], ["☑", "Avslut"]], ["termination"]),
        ([["X", "Nyupplägg", "", "Förändring", "", "Avslut"]], ["new"]),
        ([["Nyupplägg", "", "Förändring", "", "Avslut", "X"]], ["termination"]),
        ([["Nyupplägg: ja"], ["Förändring: nej"]], ["new"]),
        ([["[x] Nyupplägg [ ] Förändring [ ] Avslut"]], ["new"]),
        ([["Nyupplägg", True], ["Avslut", False]], ["new"]),
        ([["Nyupplägg", "X"], ["Avslut", "X"]], ["new", "termination"]),
        ([["Nyupplägg", ""], ["Avslut", ""]], []),
    ],
)
def test_request_kind_ticks(kind_rows: list[list[object]], want: list[str]) -> None:
    rows = [["Beställningen gäller"], *kind_rows, [], *ORG_ROWS, [], HEADER, ["Tolvan", "Tolvansson", "19121212-1212"]]
    data = parse_in_process("xlsx", _xlsx(rows), SCHEMA)
    assert data.kinds_checked == want
    assert data.fields["kommun"] == "Hylte"


def test_word_checkbox_content_control_and_sdt_text() -> None:
    from intake.blankforms import checkbox_sdt

    d = docx.Document()
    p = d.add_paragraph()
    box = checkbox_sdt("Avslut")
    box.find(".//{http://schemas.microsoft.com/office/word/2010/wordml}checked").set(
        "{http://schemas.microsoft.com/office/word/2010/wordml}val", "1")
    p._p.append(box)
    p.add_run(" Avslut")
    d.add_paragraph("Kommun: Falkenberg")
    d.add_paragraph("Förvaltning: Omsorg")
    # A plain-text content control holding the value: invisible to Paragraph.text.
    p = d.add_paragraph("Enhet: ")
    p._p.append(docx.oxml.parse_xml(
        '<w:sdt xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:sdtPr/>'
        "<w:sdtContent><w:r><w:t>Boendet</w:t></w:r></w:sdtContent></w:sdt>"))
    buf = io.BytesIO()
    d.save(buf)
    data = parse_in_process("docx", buf.getvalue(), SCHEMA)
    assert data.kinds_checked == ["termination"]
    assert data.fields["enhet"] == "Boendet"
    assert data.fields["kommun"] == "Falkenberg"


def test_docx_merged_cells_value_right_of_a_wide_label() -> None:
    d = docx.Document()
    t = d.add_table(rows=3, cols=4)
    a = t.cell(0, 0).merge(t.cell(0, 1))
    a.text = "Kommun:"
    t.cell(0, 2).text = "Laholm"
    t.cell(1, 0).text = "Förvaltning"
    t.cell(1, 1).merge(t.cell(1, 3)).text = "Kultur"
    t.cell(2, 0).text = "Enhet"
    t.cell(2, 2).text = "Biblioteket"
    buf = io.BytesIO()
    d.save(buf)
    data = parse_in_process("docx", buf.getvalue(), SCHEMA)
    assert (data.fields["kommun"], data.fields["forvaltning"], data.fields["enhet"]) == ("Laholm", "Kultur",
                                                                                         "Biblioteket")


def test_identity_numbers_typed_as_numbers_and_any_sheet() -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["Ingenting här"])
    ws = wb.create_sheet("Blad2")
    for row in [*ORG_ROWS, [], HEADER, ["Tolvan", "T", 191212121212, "t@example.se", "Vaccinatör"], [],
                ["Anna", "A", "870521-2382", "a@example.se", "vaccinatör"]]:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    data = parse_in_process("xlsx", buf.getvalue(), SCHEMA)
    assert [u["identitet"] for u in data.users] == ["191212121212", "870521-2382"]
    assert [u["row"] for u in data.users] == [1, 3]


def test_a_workbook_without_the_forms_labels_is_not_the_form() -> None:
    att = Attachment("budget.xlsx", "application/vnd.ms-excel", _xlsx([["Budget 2027"], ["Konto", "Belopp"],
                                                                        ["4010", 1200]]))
    outcome = extract_form([att], SCHEMA, sandbox=False)
    assert outcome.form is None
    assert [p.kind for p in outcome.problems] == ["missing"]


# --- one sandbox per mail, a cap on Office files ----------------------------------------------------------


def test_all_files_of_a_mail_share_one_sandbox_and_a_death_costs_only_its_own_file() -> None:
    from parsers.sandbox import SandboxError, parse_bounded_many
    from tests.parsers.test_attachments import large_legit_xlsx

    good = (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    word = (FORMS / "filled" / "blank_new_1user.docx").read_bytes()
    results = parse_bounded_many([("xlsx", good), ("xlsx", large_legit_xlsx()), ("docx", word)], SCHEMA,
                                 memory_bytes=100 * 1024 * 1024)
    assert [type(r).__name__ for r in results] == ["FormData", "SandboxError", "FormData"]
    assert results[1].kind == "memory"
    assert results[0] == parse_in_process("xlsx", good, SCHEMA)  # the file before the death keeps its answer
    assert results[2] == parse_in_process("docx", word, SCHEMA)  # a fresh child reads the rest
    assert isinstance(results[1], SandboxError)


def test_the_time_limit_is_for_the_whole_mail() -> None:
    """Three slow files share one limit: the first runs out of it, the others get none (not three limits)."""
    import time

    from parsers.sandbox import parse_bounded_many
    from tests.parsers.test_attachments import large_legit_xlsx

    slow = large_legit_xlsx()  # openpyxl takes seconds over it
    start = time.monotonic()
    results = parse_bounded_many([("xlsx", slow)] * 3, SCHEMA, timeout_s=1.0)
    assert [getattr(r, "kind", None) for r in results] == ["timeout"] * 3
    assert time.monotonic() - start < 2.5  # three limits would be 3 s


def test_one_warm_worker_parses_mail_after_mail_and_is_restarted_if_it_dies() -> None:
    """Forms are parsed by the persistent worker (not by the cold fallback), one process for mail after mail,
    with the same answers; a worker that died is replaced for the next mail."""
    import os
    import signal

    from parsers import sandbox

    good = (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    expected = parse_in_process("xlsx", good, SCHEMA)
    sandbox.stop_workers()
    sandbox.last_child_peak_kb = 0
    assert sandbox.parse_bounded("xlsx", good, SCHEMA) == expected
    assert sandbox.last_child_peak_kb > 0  # the worker answered (the cold child reports no peak)
    (worker,) = sandbox._idle
    assert sandbox.parse_bounded("xlsx", good, SCHEMA) == expected
    assert sandbox._idle == [worker] and worker.served == 2 and worker.alive()

    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()
    assert sandbox.parse_bounded("xlsx", good, SCHEMA) == expected
    (fresh,) = sandbox._idle
    assert fresh is not worker and fresh.alive() and fresh.served == 1


def test_a_timeout_kills_the_worker_and_the_next_mail_gets_a_fresh_one() -> None:
    from parsers import sandbox
    from tests.parsers.test_attachments import large_legit_xlsx

    good = (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    sandbox.stop_workers()
    assert sandbox.parse_bounded("xlsx", good, SCHEMA) == parse_in_process("xlsx", good, SCHEMA)
    (worker,) = sandbox._idle
    results = sandbox.parse_bounded_many([("xlsx", large_legit_xlsx())], SCHEMA, timeout_s=0.2)
    assert [getattr(r, "kind", None) for r in results] == ["timeout"]
    assert worker.proc.poll() is not None and sandbox._idle == []  # killed, not handed out again
    assert sandbox.parse_bounded("xlsx", good, SCHEMA) == parse_in_process("xlsx", good, SCHEMA)


def test_a_worker_is_replaced_after_its_quota_of_mails(monkeypatch: pytest.MonkeyPatch) -> None:
    from parsers import sandbox

    good = (FORMS / "filled" / "blank_new_1user.docx").read_bytes()
    monkeypatch.setattr(sandbox, "RECYCLE_AFTER", 2)
    sandbox.stop_workers()
    pids = []
    for _ in range(4):
        assert sandbox.parse_bounded("docx", good, SCHEMA) == parse_in_process("docx", good, SCHEMA)
        pids.append(sandbox.last_worker_pid)
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_without_a_worker_each_mail_gets_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the worker cannot start, the cold path answers the same (with the same limits)."""
    from parsers import sandbox
    from tests.parsers.test_attachments import large_legit_xlsx

    good = (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    sandbox.stop_workers()
    monkeypatch.setattr(sandbox, "_WORKER_BOOT", "raise SystemExit(1)")
    monkeypatch.setattr(sandbox, "_worker_failed", False)
    results = sandbox.parse_bounded_many([("xlsx", good), ("xlsx", large_legit_xlsx())], SCHEMA,
                                         memory_bytes=100 * 1024 * 1024)
    assert sandbox._worker_failed and sandbox._idle == []
    assert results[0] == parse_in_process("xlsx", good, SCHEMA)
    assert getattr(results[1], "kind", None) == "memory"


def test_a_hostile_file_beside_the_form_is_unreadable_and_the_reason_names_only_it() -> None:
    from parsers.attachments import AttachmentLimits
    from rules.forms import find_form
    from tests.parsers.test_attachments import large_legit_xlsx

    atts = [Attachment("blankett.xlsx", "", (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()),
            Attachment("stor.xlsx", "", large_legit_xlsx())]
    found = find_form(atts, SCHEMA, AttachmentLimits(sandbox_memory_bytes=100 * 1024 * 1024))
    assert [(r.code, "memory" in r.detail) for r in found.reasons] == [("form.unreadable", True)]


@pytest.mark.parametrize(("count", "codes"), [(5, ["attachment.multiple_forms"]), (6, ["attachment.too_many"])])
def test_more_office_files_than_allowed_are_not_parsed(count: int, codes: list[str]) -> None:
    from rules.forms import find_form

    good = (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    atts = [Attachment(f"b{i}.xlsx", "", good) for i in range(count)] + [Attachment("logo.png", "image/png",
                                                                                    b"\x89PNG\r\n\x1a\n" + b"0" * 64)]
    found = find_form(atts, SCHEMA, sandbox=False)
    assert [r.code for r in found.reasons] == codes
    if count == 6:
        assert found.reasons[0].message.startswith("Meddelandet har 6 Word- eller Excel-filer som bilagor.")
        assert "b0" not in found.reasons[0].message


def test_a_death_in_a_used_worker_is_tried_again_in_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer must not depend on what the worker read before: a file that runs out of memory in a worker that
    had served other mails is read once more by a new worker (and only then answered ``memory``)."""
    from parsers import sandbox
    from tests.parsers.test_attachments import large_legit_xlsx

    starts = []
    start = sandbox._Worker.__init__

    def counting(self) -> None:  # noqa: ANN001
        starts.append(1)
        start(self)

    monkeypatch.setattr(sandbox._Worker, "__init__", counting)
    hog, good = large_legit_xlsx(), (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    sandbox.stop_workers()
    (fresh_death,) = sandbox.parse_bounded_many([("xlsx", hog)], SCHEMA, memory_bytes=100 * 1024 * 1024)
    assert fresh_death.kind == "memory" and len(starts) == 1  # a fresh worker's answer stands
    assert sandbox.parse_bounded("xlsx", good, SCHEMA) == parse_in_process("xlsx", good, SCHEMA)
    assert len(starts) == 2
    (used_death,) = sandbox.parse_bounded_many([("xlsx", hog)], SCHEMA, memory_bytes=100 * 1024 * 1024)
    assert used_death.kind == "memory" and len(starts) == 3  # died in the used worker, then in a fresh one


def test_an_answer_longer_than_any_form_gives_is_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from parsers import sandbox

    good = (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    sandbox.stop_workers()
    monkeypatch.setattr(sandbox, "MAX_ANSWER_BYTES", 16)
    (result,) = sandbox.parse_bounded_many([("xlsx", good)], SCHEMA)
    assert isinstance(result, sandbox.SandboxError) and result.kind == "crash"
    assert sandbox._idle == []  # that worker is not used again


def test_a_worker_can_be_started_ahead_of_the_first_form() -> None:
    from parsers import sandbox

    sandbox.stop_workers()
    sandbox.start_worker().join(60)
    (worker,) = sandbox._idle
    assert worker.alive() and worker.served == 0
    good = (FORMS / "filled" / "blank_new_1user.xlsx").read_bytes()
    assert sandbox.parse_bounded("xlsx", good, SCHEMA) == parse_in_process("xlsx", good, SCHEMA)
    assert sandbox._idle == [worker] and worker.served == 1  # the form went to the worker started ahead
