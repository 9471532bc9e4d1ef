"""The orderer register in the staff web UI (admins only): list, add, remove, import and export.

Runs inside :func:`intake.web.app.create_app`: sign-in, CSRF on every POST and the security headers come
from the app. Every change and export is audited by :mod:`intake.orderers` (``via: web``).
"""

from __future__ import annotations

import io
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, send_file, url_for

from intake import orderers as lib
from intake.store import NotFoundError, Store, open_store

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@cache
def orderer_labels() -> dict[str, dict[str, str]]:
    """Section -> id -> Swedish word of the orderer pages and the .xlsx import/export."""
    return tomllib.loads(resources.files("intake.web").joinpath("orderers_labels.toml").read_text("utf-8"))


def orderers_blueprint(config: Any, routines: list[Any]) -> Blueprint:
    """The orderer register's pages under ``/orderers`` for the app serving ``config``'s store."""
    bp = Blueprint("orderers", __name__, url_prefix="/orderers")
    using = lib.register_routines(routines)
    words = orderer_labels()

    def store() -> Store:
        if "store" not in g:
            g.store = open_store(config.db_path)  # closed by the app's teardown
        return g.store

    def routine() -> Any:
        wanted = (request.values.get("routine") or "").strip()
        chosen = next((r for r in using if r.id == wanted), using[0] if using else None)
        if chosen is None:
            abort(404)
        return chosen

    def back(chosen: Any):
        return redirect(url_for("orderers.index", routine=chosen.id))

    @bp.before_request
    def admins_only():
        if g.get("user") is None or not g.user.is_admin:
            abort(403)

    @bp.app_context_processor
    def orderer_globals() -> dict[str, Any]:
        return {"orderers_enabled": bool(using)}

    @bp.get("/")
    def index():
        chosen = routine()
        region = (request.args.get("region") or "").strip()[:200] or None
        rows = store().orderers(chosen.id, region)
        return render_template("orderers.html", rows=[dict(r, valid=lib.is_valid(r)) for r in rows],
                               routine=chosen, routines=using, regions=lib.regions_of(chosen) or [],
                               region=region, words=words)

    @bp.post("/add")
    def add():
        chosen = routine()
        f = request.form
        values = {k: f.get(k, "")[:200] for k in ("email", "name", "region", "valid_from", "valid_to")}
        values["valid_from"] = values["valid_from"] or lib.today().isoformat()
        row, problem = lib.clean(values, lib.regions_of(chosen))
        if problem:
            flash(words["problem"][problem], "error")
            return back(chosen)
        _, created = lib.add_orderer(store(), chosen, row, actor=g.user.name, via="web")
        flash(words["flash"]["added" if created else "updated"], "ok")
        return back(chosen)

    @bp.post("/<int:pk>/remove")
    def remove(pk: int):
        chosen = routine()
        try:
            lib.remove_orderer(store(), pk, actor=g.user.name, via="web")
        except NotFoundError:
            abort(404)
        flash(words["flash"]["removed"], "ok")
        return back(chosen)

    @bp.post("/import")
    def import_():
        chosen = routine()
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(words["flash"]["no_file"], "error")
            return back(chosen)
        try:
            result = lib.import_xlsx(store(), chosen, upload.read(), actor=g.user.name, headers=words["column"],
                                     replace=bool(request.form.get("replace")), via="web")
        except lib.OrdererImportError as exc:
            flash(words["import"]["refused"].format(row=exc.row, problem=words["problem"].get(exc.problem, "")),
                  "error")
            return back(chosen)
        flash(words["import"]["done"].format(rows=result.rows, added=result.added, updated=result.updated,
                                             removed=result.removed), "ok")
        return back(chosen)

    @bp.get("/export.xlsx")
    def export():
        chosen = routine()
        region = (request.args.get("region") or "").strip()[:200] or None
        data, _n = lib.export_orderers(store(), chosen, actor=g.user.name, region=region, headers=words["column"],
                                       via="web")
        return send_file(io.BytesIO(data), as_attachment=True, download_name="bestallare.xlsx", mimetype=XLSX)

    return bp
