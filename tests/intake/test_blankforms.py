"""Blank forms generated from the schema: every label is on them, the committed copies are current,
and a generated form filled in by openpyxl / python-docx reads back to the same data, valid."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pytest

from intake import blankforms
from intake.blankforms import blank_form_bytes, write_blank_forms
from parsers.mail import Attachment
from parsers.sandbox import parse_in_process
from rules.forms import judge_form, load_form_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_form_schema(ROOT / "rules" / "packs" / "mittvaccin" / "form.toml")
COMMITTED = ROOT / "fixtures" / "forms" / "blank"
ROUTINE = "MittVaccin – Region Halland"
SUBJECT_KINDS = {"new": ["new", "change"], "change": ["new", "change"], "termination": ["termination"]}


def _script():
    spec = importlib.util.spec_from_file_location("make_form_fixtures", ROOT / "scripts" / "make_form_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def every_label() -> int:
    return len(SCHEMA.fields) + len(SCHEMA.users.columns) + len(SCHEMA.kind.options)


def test_writes_xlsx_and_docx(tmp_path: Path) -> None:
    paths = write_blank_forms(SCHEMA, "MittVaccin – Region Halland", tmp_path / "out")
    assert sorted(p.suffix for p in paths) == [".docx", ".xlsx"]
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
def test_blank_has_every_label_and_committed_copy_is_current(tmp_path: Path, suffix: str) -> None:
    fresh = next(p for p in write_blank_forms(SCHEMA, ROUTINE, tmp_path) if p.suffix == suffix)
    committed = COMMITTED / fresh.name
    for path in (fresh, committed):
        data = parse_in_process(suffix[1:], path.read_bytes(), SCHEMA)
        assert data.labels_found == every_label(), path
    # The committed blank was generated from the current schema (same text content).
    from parsers.docx_form import docx_grids
    from parsers.xlsx_form import xlsx_grids

    grids = xlsx_grids if suffix == ".xlsx" else docx_grids

    def texts(p: Path) -> list[str]:
        return [c.text for g in grids(p.read_bytes()) for row in g.rows for c in row if c.text]

    assert texts(committed) == texts(fresh), "regenerate: .venv/bin/python scripts/make_form_fixtures.py"


USERS = [
    {"fornamn": "Tolvan", "efternamn": "Test", "identitet": "19121212-1212", "epost": "t@halmstad.example",
     "telefon": "035-100000", "titel": "Sjuksköterska", "roll": "Vaccinatör", "giltig_fran": date(2026, 12, 1),
     "giltig_till": None},
    {"fornamn": "Greta", "efternamn": "Test", "identitet": "19440813-9089", "epost": "g@halmstad.example",
     "telefon": None, "titel": "Undersköterska", "roll": "Läsbehörighet", "giltig_fran": date(2027, 1, 1),
     "giltig_till": date(2027, 6, 30)},
]
FIELDS = {"kommun": "Laholm", "forvaltning": "Vård och omsorg", "enhet": "Hemsjukvården", "enhet_hsa_id": None,
          "bestallare_namn": "Beata", "bestallare_titel": "Chef", "bestallare_telefon": "0430-150 00",
          "bestallare_epost": "beata@laholm.example", "datum": date(2026, 11, 20)}


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
@pytest.mark.parametrize("kind", ["new", "change"])
def test_round_trip_generated_filled_parsed_validated(tmp_path: Path, suffix: str, kind: str) -> None:
    script = _script()
    blank = next(p for p in write_blank_forms(SCHEMA, "x", tmp_path) if p.suffix == suffix)
    filled = tmp_path / f"filled{suffix}"
    fields = {k: v for k, v in FIELDS.items() if v is not None}
    if suffix == ".xlsx":
        script.fill_xlsx_blank(blank, filled, kind, fields, USERS)
    else:
        script.fill_docx_blank(blank, filled, kind, fields, USERS)
    outcome = judge_form([Attachment(filled.name, "", filled.read_bytes())], SCHEMA,  # sandboxed
                         form_kinds=SUBJECT_KINDS[kind], request_type_label="x", today=date(2026, 11, 24))
    assert outcome.reasons == []
    form = outcome.form
    assert form.kind == kind
    assert form.format == suffix[1:]
    assert {k: v for k, v in form.fields.items() if v is not None} == fields
    assert [{k: v for k, v in u.items() if v is not None} for u in form.users] == [
        {"row": i, **{k: v for k, v in u.items() if v is not None}} for i, u in enumerate(USERS, start=1)]


def test_cached_blank_forms_follow_a_changed_form_toml(tmp_path: Path) -> None:
    """Built once per schema version: the same schema is served from the cache, a changed form.toml (a new
    label) gives new bytes carrying the new label."""
    import io

    import openpyxl

    pack = tmp_path / "pack"
    pack.mkdir()
    source = (ROOT / "rules" / "packs" / "mittvaccin" / "form.toml").read_text(encoding="utf-8")
    (pack / "form.toml").write_text(source, encoding="utf-8")
    blankforms.clear_blank_form_cache()
    builds = blankforms.builds
    first = blank_form_bytes(load_form_schema(pack / "form.toml"), ROUTINE)
    again = blank_form_bytes(load_form_schema(pack / "form.toml"), ROUTINE)
    assert again == first and blankforms.builds == builds + 1

    assert "Personnummer eller HSA-id" in source
    (pack / "form.toml").write_text(source.replace("Personnummer eller HSA-id", "Personnummer/HSA-id"),
                                    encoding="utf-8")
    changed = dict(blank_form_bytes(load_form_schema(pack / "form.toml"), ROUTINE))
    assert blankforms.builds == builds + 2
    assert changed != dict(first)
    xlsx = next(data for name, data in changed.items() if name.endswith(".xlsx"))
    cells = {str(c.value) for ws in openpyxl.load_workbook(io.BytesIO(xlsx)) for row in ws.iter_rows() for c in row}
    assert any("Personnummer/HSA-id" in c for c in cells)
    assert not any("Personnummer eller HSA-id" in c for c in cells)


def test_a_new_process_reads_the_blank_forms_kept_on_disk_and_a_changed_schema_builds_anew(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    source = (ROOT / "rules" / "packs" / "mittvaccin" / "form.toml").read_text(encoding="utf-8")
    (pack / "form.toml").write_text(source, encoding="utf-8")
    cache = tmp_path / "cache"
    blankforms.clear_blank_form_cache()
    builds = blankforms.builds
    first = blank_form_bytes(load_form_schema(pack / "form.toml"), ROUTINE, cache_dir=cache)
    blankforms.clear_blank_form_cache()  # as a new process starts: nothing in memory
    again = blank_form_bytes(load_form_schema(pack / "form.toml"), ROUTINE, cache_dir=cache)
    assert again == first  # the same names, in the same order, with the same bytes
    assert blankforms.builds == builds + 1  # read from disk, not built

    (pack / "form.toml").write_text(source.replace("Personnummer eller HSA-id", "Personnummer/HSA-id"),
                                    encoding="utf-8")
    blankforms.clear_blank_form_cache()
    changed = blank_form_bytes(load_form_schema(pack / "form.toml"), ROUTINE, cache_dir=cache)
    assert blankforms.builds == builds + 2 and changed != first

    # A kept copy that cannot be read (here: emptied) is built again rather than sent empty.
    for kept in cache.iterdir():
        for f in kept.iterdir():
            f.unlink()
    blankforms.clear_blank_form_cache()
    rebuilt = blank_form_bytes(load_form_schema(pack / "form.toml"), ROUTINE, cache_dir=cache)
    assert [name for name, _ in rebuilt] == [name for name, _ in changed] and all(data for _, data in rebuilt)
    assert blankforms.builds == builds + 3  # (built again: its bytes carry a new creation time)
