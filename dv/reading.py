"""Reading an uploaded extract safely, before anything is interpreted.

Every file may be hostile. In order: a size cap; the type from the first bytes (not the name); for xlsx the
zip's declared uncompressed sizes capped and every XML member refused if it declares a DTD or entities (so
neither billion-laughs nor external entities reach a parser); then python-calamine reads cached cell values
(formulas are never evaluated). CSV is decoded strictly: utf-8-sig, then cp1252 (or the profile's encoding).
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass

import openpyxl.xml

from core.settings import Settings, get_settings

# openpyxl (used to write exports) is only safe from XML entity attacks with defusedxml installed.
assert openpyxl.xml.DEFUSEDXML, "defusedxml must be installed (requirements.txt)"

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class FileRejected(Exception):
    """The file cannot be imported at all; nothing is written. The message is shown to the user as is."""


@dataclass
class RawSheet:
    rows: list[list]  # every row from row 1, cells as python values ('' or None when empty)
    kind: str  # "xlsx" or "csv"
    encoding: str | None = None
    sheet_name: str | None = None


def _check_zip(data: bytes, settings: Settings) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise FileRejected("The file looks like an Excel workbook but is corrupt (not a valid zip archive).") from None
    with zf:
        infos = zf.infolist()
        if "xl/workbook.xml" not in {i.filename for i in infos}:
            raise FileRejected("The file is a zip archive but not an Excel workbook (.xlsx).")
        declared = sum(i.file_size for i in infos)
        if declared > settings.max_uncompressed_bytes:
            raise FileRejected(
                f"The workbook would expand to {declared / 1e6:,.0f} MB, over the limit of "
                f"{settings.max_uncompressed_bytes / 1e6:,.0f} MB; it was not opened."
            )
        for info in infos:
            if not info.filename.endswith((".xml", ".rels", ".vml")):
                continue
            read = 0
            try:
                with zf.open(info) as member:
                    tail = b""
                    while chunk := member.read(1 << 20):
                        read += len(chunk)
                        # A member may lie about its size: stop at the declared size (plus a little) whatever it says.
                        if read > info.file_size + 1024:
                            raise FileRejected(f"The workbook part {info.filename} is larger than it declares; it was not opened.")
                        window = tail + chunk
                        if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                            raise FileRejected(
                                f"The workbook part {info.filename} declares XML entities or a DTD, which Excel never "
                                "writes; it was not opened."
                            )
                        tail = chunk[-16:]
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
                raise FileRejected(f"The workbook is corrupt ({info.filename}: {exc}).") from None


def _read_xlsx(data: bytes, sheet: str | None, settings: Settings, nrows: int | None) -> RawSheet:
    import python_calamine

    _check_zip(data, settings)
    try:
        book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        names = book.sheet_names
        if sheet:
            match = next((n for n in names if n.strip().casefold() == sheet.strip().casefold()), None)
            if match is None:
                raise FileRejected(f"The workbook has no sheet named '{sheet}'. Its sheets: {', '.join(names)}.")
            ws = book.get_sheet_by_name(match)
        else:
            if not names:
                raise FileRejected("The workbook has no sheets.")
            ws = book.get_sheet_by_index(0)
        if ws.total_height > settings.max_rows:
            raise FileRejected(f"The sheet has {ws.total_height:,} rows, over the limit of {settings.max_rows:,}.")
        kwargs = {"skip_empty_area": False}
        if nrows:
            kwargs["nrows"] = nrows
        rows = ws.to_python(**kwargs)
        return RawSheet(rows=rows, kind="xlsx", sheet_name=ws.name)
    except FileRejected:
        raise
    except Exception as exc:  # calamine raises its own error types for every kind of corrupt workbook
        raise FileRejected(f"The workbook could not be read: {exc}") from None


def decode_text(data: bytes, encoding: str | None) -> tuple[str, str]:
    """Strict decoding. A UTF-8 byte-order mark always wins (Excel's "CSV UTF-8"); otherwise the profile's
    encoding, or utf-8-sig then cp1252. Never lenient: "Zoë" must not silently become "ZoÃ«"."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    else:
        candidates = [encoding] if encoding else ["utf-8-sig", "cp1252"]
    for enc in candidates:
        try:
            return data.decode(enc, errors="strict"), enc
        except (UnicodeDecodeError, LookupError):
            continue
    raise FileRejected(
        f"The file's text could not be decoded as {' or '.join(candidates)}. Save it from Excel as "
        "'CSV UTF-8' or plain CSV."
    )


def _read_csv(data: bytes, encoding: str | None, settings: Settings, nrows: int | None) -> RawSheet:
    if b"\x00" in data[:65536]:
        raise FileRejected("The file is not a spreadsheet or CSV (it contains binary data).")
    text, used = decode_text(data, encoding)
    sample = text[:16384]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows: list[list] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > settings.max_rows:
                raise FileRejected(f"The file has more than {settings.max_rows:,} rows, over the limit.")
            if nrows and len(rows) >= nrows:
                break
    except csv.Error as exc:
        raise FileRejected(f"The CSV is malformed near line {reader.line_num}: {exc}.") from None
    return RawSheet(rows=rows, kind="csv", encoding=used)


def read_rows(data: bytes, file_name: str, *, sheet: str | None = None, encoding: str | None = None,
              settings: Settings | None = None, nrows: int | None = None) -> RawSheet:
    """All rows of the file (or the first ``nrows``), or ``FileRejected`` with a plain reason."""
    settings = settings or get_settings()
    if not data:
        raise FileRejected("The file is empty.")
    if len(data) > settings.max_upload_bytes:
        raise FileRejected(
            f"The file is {len(data) / 1e6:,.1f} MB, over the limit of {settings.max_upload_bytes / 1e6:,.0f} MB."
        )
    if data.startswith(XLSX_MAGIC):
        return _read_xlsx(data, sheet, settings, nrows)
    if data.startswith(OLE_MAGIC):
        raise FileRejected("This is an old Excel 97-2003 (.xls) file or a password-protected workbook. Save it as .xlsx or CSV.")
    if file_name.lower().endswith((".xlsx", ".xlsm")):
        raise FileRejected("The file is named .xlsx but is not an Excel workbook (it may be corrupt).")
    return _read_csv(data, encoding, settings, nrows)
