"""The overview (statistics) and the Excel export of the ticket list (blueprint ``reports``)."""

from __future__ import annotations

import io

from flask import Blueprint, g, render_template, send_file

from intake.reports import export_xlsx, search, stats
from intake.web.common import ctx, state_label, store
from intake.web.desk import filters_from_args

bp = Blueprint("reports", __name__)


@bp.get("/overview")
def overview():
    data = stats(store())
    queue_names = {qid: name for r in ctx().routines for qid, name in r.queues.items()}
    return render_template("overview.html", s=data, queue_names=queue_names)


@bp.get("/tickets/export.xlsx")
def export():
    rows, _ = search(store(), filters_from_args(), per_page=None)
    store().add_event("exported", actor=g.user.name, data={"tickets": len(rows)})
    by_id = ctx().by_id
    xlsx = export_xlsx(rows, lambda row: state_label(by_id, row))
    return send_file(io.BytesIO(xlsx), as_attachment=True, download_name="arenden.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
