"""The access register in the staff web UI: search, a person's page, a unit's page, follow-up, export,
and admin-only manual corrections (each with a required reason).

Runs inside :func:`intake.web.app.create_app`: sign-in, CSRF on every POST and security headers come from
the app. A search by identifier is a POST, so the identifier never appears in a URL or an access log;
persons are reached by an internal number. Every look at entries is audited (see :mod:`intake.register`).
"""

from __future__ import annotations

import io
import re
import tomllib
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, send_file, url_for

from intake import register as reg
from intake.store import Store, open_store

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATES = ("current", "ended", "all")


@cache
def register_labels() -> dict[str, dict[str, str]]:
    """Section -> id -> Swedish label of the register pages and export."""
    return tomllib.loads(resources.files("intake.web").joinpath("register_labels.toml").read_text("utf-8"))


def rlabel(section: str, key: str | None) -> str:
    if key is None:
        return ""
    return register_labels().get(section, {}).get(key, key)


def register_blueprint(config: Any, routines: list[Any]) -> Blueprint:
    """The register pages under ``/register`` for the app serving ``config``'s store."""
    bp = Blueprint("register", __name__, url_prefix="/register")
    by_id = {r.id: r for r in routines}
    enabled = bool(config["register"]["enabled"])
    if enabled:
        reg.check_mappings(routines)  # a bad register.toml stops the UI at start, naming file and key

    def store() -> Store:
        if "store" not in g:
            g.store = open_store(config.db_path)  # closed by the app's teardown
        return g.store

    def keys() -> reg.RegisterKeys:
        try:
            return reg.keys_for(config, store())
        except reg.RegisterError:
            abort(503)

    def actor() -> str:
        return g.user.name

    def admin_only() -> None:
        if not g.user.is_admin:
            abort(403)

    def message(key: str, category: str) -> None:
        flash(rlabel("flash", key), category)

    @bp.before_request
    def only_when_enabled():
        if not enabled:
            abort(404)

    @bp.app_context_processor
    def register_globals() -> dict[str, Any]:
        return {"rlabel": rlabel, "register_enabled": enabled}

    def filters_from_args() -> reg.RegisterFilters:
        a = request.args
        state = a.get("state", "current")
        return reg.RegisterFilters(
            system=_arg(a, "system"), role=_arg(a, "role"), unit=_arg(a, "unit"),
            municipality=_arg(a, "kommun"), orderer=_arg(a, "orderer"),
            state=state if state in STATES else "current")

    def filter_args(f: reg.RegisterFilters) -> dict[str, str]:
        out = {"system": f.system, "role": f.role, "unit": f.unit, "kommun": f.municipality,
               "orderer": f.orderer, "state": f.state}
        return {k: v for k, v in out.items() if v}

    def choices() -> dict[str, list[str]]:
        s = store()
        return {c: s.register_values(c) for c in ("system", "role", "unit", "municipality")}

    @bp.get("/")
    def index():
        f = filters_from_args()
        searched = any((f.system, f.role, f.unit, f.municipality, f.orderer))
        rows = reg.list_entries(store(), keys(), f, actor(), what="search") if searched else []
        return render_template("register_index.html", rows=rows, filters=f, searched=searched,
                               args=filter_args(f), choices=choices(), not_found=False)

    @bp.post("/person")
    def person_search():
        identifier = request.form.get("identifier", "")[:64]
        person_id = reg.find_person(store(), keys(), identifier, actor()) if identifier.strip() else None
        if person_id is None:
            f = reg.RegisterFilters()
            return render_template("register_index.html", rows=[], filters=f, searched=False, args={},
                                   choices=choices(), not_found=True), 404
        return redirect(url_for("register.person", pk=person_id))

    @bp.get("/person/<int:pk>")
    def person(pk: int):
        view = reg.person_view(store(), keys(), pk, actor())
        return render_template("register_person.html", p=view, today=date.today().isoformat())

    @bp.get("/unit")
    def unit():
        name = _arg(request.args, "unit")
        kommun = _arg(request.args, "kommun")
        if not name and not kommun:
            return redirect(url_for("register.index"))
        f = reg.RegisterFilters(unit=name, municipality=kommun if not name else None, state="current")
        rows = reg.list_entries(store(), keys(), f, actor(), what="review" if not name else "unit")
        persons = len({r["person_id"] for r in rows})
        return render_template("register_unit.html", rows=rows, unit=name, kommun=kommun, persons=persons,
                               args=filter_args(f), today=date.today().isoformat())

    @bp.get("/followup")
    def followup():
        days = max(1, min(request.args.get("days", 30, type=int) or 30, 3650))
        lists = reg.followup(store(), keys(), by_id, actor(), days=days)
        return render_template("register_followup.html", lists=lists, days=days)

    @bp.get("/export.xlsx")
    def export():
        f = filters_from_args()
        labels = register_labels()
        data, _n = reg.export_entries(store(), keys(), f, actor(), headers=labels["column"],
                                      values={"state": labels["state"], "source": labels["source"]})
        name = "behorighetsregister.xlsx"
        return send_file(io.BytesIO(data), as_attachment=True, download_name=name, mimetype=XLSX)

    # -- admin corrections ---------------------------------------------------------------------------

    @bp.post("/entries")
    def add_entry():
        admin_only()
        form = request.form
        if not form.get("reason", "").strip():
            message("error.reason", "error")
            return redirect(url_for("register.index"))
        try:
            entry_id = reg.add_manual(
                store(), keys(), person=form.get("person", "")[:64], name=form.get("name", "")[:200],
                system=form.get("system", "")[:200], role=form.get("role", "")[:200],
                unit=form.get("unit", "")[:200], unit_hsa_id=form.get("unit_hsa_id", "")[:64],
                municipality=form.get("kommun", "")[:200], valid_from=form.get("valid_from", ""),
                valid_to=form.get("valid_to", ""), orderer_email=form.get("orderer_email", "")[:200],
                orderer_name=form.get("orderer_name", "")[:200], actor=actor(), reason=form.get("reason", ""))
        except reg.RegisterError:
            message("error.add", "error")
            return redirect(url_for("register.index"))
        message("ok.add", "ok")
        return redirect(url_for("register.person", pk=store().register_entry(entry_id)["person_id"]))

    @bp.post("/entries/<int:pk>/<any(end, correct):action>")
    def entry_action(pk: int, action: str):
        entry_id = pk
        admin_only()
        entry = reg.require_entry_or_none(store(), entry_id)
        if entry is None:
            abort(404)
        form = request.form
        back = redirect(url_for("register.person", pk=entry["person_id"]))
        if not form.get("reason", "").strip():
            message("error.reason", "error")
            return back
        try:
            if action == "end":
                reg.end_entry(store(), entry_id, on=form.get("ended_on", ""), actor=actor(),
                              reason=form.get("reason", ""))
                message("ok.end", "ok")
            else:
                changes = {c: form.get(c, "")[:200] for c in ("role", "unit", "unit_hsa_id", "municipality",
                                                               "valid_from", "valid_to") if c in form}
                changed = reg.correct_entry(store(), entry_id, changes, actor=actor(), reason=form.get("reason", ""))
                message("ok.correct" if changed else "ok.nochange", "ok")
        except reg.RegisterError:
            message(f"error.{action}", "error")
        return back

    return bp


def _arg(args: Any, key: str) -> str | None:
    value = re.sub(r"\s+", " ", (args.get(key) or "")).strip()[:200]
    return value or None
