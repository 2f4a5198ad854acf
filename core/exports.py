"""Writing xlsx and csv that are safe to open: a cell that starts with = + - @, a tab or a carriage return is
prefixed with an apostrophe so that Excel and LibreOffice show it as text instead of running it as a formula
(CSV/formula injection). Every export in DA Daily goes through here."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """Numbers, dates and None stay as they are (typed cells, never formulas); anything else becomes text, and the
    text is checked: an object whose text starts with ``=``, ``-``, ... (a negative Decimal, any object carrying
    imported text) is as live in a spreadsheet as such a string."""
    if isinstance(value, (dt.datetime, dt.date, int, float, bool)) or value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(DANGEROUS_PREFIXES) else text


def xlsx_bytes(sheets: dict[str, tuple[Sequence[str], Iterable[Sequence[object]]]], *, landscape: bool = True) -> bytes:
    """One worksheet per entry: bold frozen header, sensible widths, wrapped text, A4 landscape print setup."""
    book = Workbook()
    book.remove(book.active)
    for title, (headers, rows) in sheets.items():
        ws = book.create_sheet(title=title[:31])
        ws.append([safe_cell(h) for h in headers])
        widths = [len(str(h)) for h in headers]
        for row in rows:
            cells = [safe_cell(v) for v in row]
            ws.append(cells)
            for i, v in enumerate(cells[: len(widths)]):
                widths[i] = max(widths[i], min(len(str(v)) if v is not None else 0, 60))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(8, min(w + 2, 62))
        wrap = Alignment(wrap_text=True, vertical="top")
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                cell.alignment = wrap
                if isinstance(cell.value, dt.datetime):
                    cell.number_format = "dd/mm/yyyy hh:mm"
                elif isinstance(cell.value, dt.date):
                    cell.number_format = "dd/mm/yyyy"
        ws.freeze_panes = "A2"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape" if landscape else "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_title_rows = "1:1"
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a BOM, so Excel opens accents correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(h) for h in headers])
    for row in rows:
        writer.writerow(["" if v is None else safe_cell(v) for v in row])
    return buf.getvalue().encode("utf-8-sig")
