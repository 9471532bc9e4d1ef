"""A filled-in .xlsx form into facts: every sheet as a grid of cells, read by label (openpyxl).

The lean reader (:mod:`parsers.leanform`) reads our forms without openpyxl's workbook model and gives the
same grids; openpyxl reads whatever it does not model. Only call this on bytes that passed
:func:`parsers.attachments.check_attachment`, and in the sandbox (:mod:`parsers.sandbox`): openpyxl has no
size limits of its own.
"""

from __future__ import annotations

import io
import warnings

from parsers.formgrid import Cell, FormData, Grid, cell_text, read_form
from parsers.schema import FormSchema

READ_ONLY_PROCESS = False  # set by the sandbox's processes, which only read forms (see skip_merged_border_styles)


def xlsx_grids(data: bytes, max_rows: int = 2000, max_cols: int = 60) -> list[Grid]:
    """Each worksheet as a :class:`Grid`, merged regions marked, at most ``max_rows`` x ``max_cols``."""
    import openpyxl

    if READ_ONLY_PROCESS:
        skip_merged_border_styles()
    with warnings.catch_warnings():
        # Data validation and conditional formatting extensions are not ours to worry about.
        warnings.simplefilter("ignore")
        # Not read_only: merged cells are only known to a full worksheet; the sandbox bounds memory.
        wb = openpyxl.load_workbook(io.BytesIO(data), data_only=True, read_only=False, keep_vba=False,
                                    keep_links=False, rich_text=False)
    grids = []
    try:
        for ws in wb.worksheets:
            nrows = min(ws.max_row or 0, max_rows)
            ncols = min(ws.max_column or 0, max_cols)
            rows: list[list[Cell]] = []
            for values in ws.iter_rows(min_row=1, max_row=nrows, max_col=ncols, values_only=True):
                rows.append([Cell(text=cell_text(v), value=v if not isinstance(v, str) else None) for v in values])
            for rng in ws.merged_cells.ranges:
                marker = object()
                for r in range(rng.min_row - 1, min(rng.max_row, nrows)):
                    for c in range(rng.min_col - 1, min(rng.max_col, ncols)):
                        if r < len(rows) and c < len(rows[r]):
                            rows[r][c].merge = marker
                top = rng.min_row - 1
                if top < len(rows) and rng.min_col - 1 < len(rows[top]):
                    rows[top][rng.min_col - 1].height = rng.max_row - rng.min_row + 1
            grids.append(Grid(rows))
    finally:
        wb.close()
    return grids


def skip_merged_border_styles() -> None:
    """For a process that only reads forms (the sandbox's child), never writes a workbook: load merged
    ranges without recomputing their border styles.

    openpyxl's loader replaces every cell of a merged range but the first with an empty ``MergedCell``
    (kept here), then re-applies the range's borders to each of them, which is half of the time it takes
    to load one of our forms (the blank form merges many bordered rows) and changes no value read. Only
    done on the openpyxl series whose loader is known to work this way; elsewhere nothing changes.
    """
    import openpyxl
    from openpyxl.cell.cell import MergedCell
    from openpyxl.worksheet.worksheet import Worksheet

    if not openpyxl.__version__.startswith("3.1.") or getattr(Worksheet, "_intake_lean", False):
        return

    def _clean_merge_range(self, mcr) -> None:  # noqa: ANN001 - openpyxl's signature
        cells = mcr.cells
        next(cells)  # the first cell keeps its value
        for row, col in cells:
            self._cells[row, col] = MergedCell(self, row, col)

    Worksheet._clean_merge_range = _clean_merge_range
    Worksheet._intake_lean = True


def parse_xlsx_form(data: bytes, schema: FormSchema, max_rows: int = 2000, max_cols: int = 60, *,
                    lean: bool = True) -> FormData:
    """The form read from an .xlsx file's bytes: by the lean reader (:mod:`parsers.leanform`), or by openpyxl
    when ``lean`` is false or the file uses something the lean reader does not model."""
    grids = None
    if lean:
        from parsers.leanform import NotLean
        from parsers.leanform import xlsx_grids as lean_grids

        try:
            grids = lean_grids(data, max_rows, max_cols)
        except NotLean:
            grids = None  # the library reads it (and gives its own answer for whatever is odd in it)
    if grids is None:
        grids = xlsx_grids(data, max_rows, max_cols)
    return read_form(grids, schema, max_rows)
