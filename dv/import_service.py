"""What the Import page needs besides the importer: a preview of the file's top rows, header suggestions for a
new profile, and the error rows as a formula-safe workbook."""
from __future__ import annotations

from rapidfuzz import fuzz, process

from core.exports import xlsx_bytes
from dv.importer import ImportResult
from dv.parsing import text
from dv.profiles import FIELDS
from dv.reading import read_rows


def preview_rows(data: bytes, file_name: str, sheet: str | None = None, encoding: str | None = None,
                 nrows: int = 15) -> list[list[str]]:
    """The first rows as text (raises FileRejected like an import would)."""
    raw = read_rows(data, file_name, sheet=sheet, encoding=encoding, nrows=nrows)
    width = max((len(r) for r in raw.rows), default=0)
    return [[text(c) or "" for c in r] + [""] * (width - len(r)) for r in raw.rows]


def guess_header_row(rows: list[list[str]]) -> int:
    """The first row with at least three non-empty cells that are all text: the likely header (1-based)."""
    for i, r in enumerate(rows):
        cells = [c for c in r if c]
        if len(cells) >= 3 and not any(c.replace(".", "").isdigit() for c in cells):
            return i + 1
    return 1


def suggest_mapping(headers: list[str]) -> dict[str, str | None]:
    """DA Daily field -> the file header that best resembles it (or None), for the profile builder's form."""
    labels = {f: f"{f.replace('_', ' ')} {desc}" for f, desc in FIELDS.items()}
    out: dict[str, str | None] = {}
    choices = [h for h in headers if h]
    for field, label in labels.items():
        best = process.extractOne(label, choices, scorer=fuzz.token_set_ratio) if choices else None
        out[field] = best[0] if best and best[1] >= 85 else None
    return out


def issues_workbook(result: ImportResult) -> bytes:
    rows = [(i.row, i.column, i.police_ref, i.severity, i.message) for i in result.errors + result.warnings]
    return xlsx_bytes({"Row errors": (["Row", "Column", "Police reference", "Severity", "Message"], rows)})
