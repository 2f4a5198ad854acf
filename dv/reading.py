"""Reading an uploaded extract safely, before anything is interpreted.

Every file may be hostile. In order: a size cap; the type from the first bytes (not the name); for xlsx the
zip's declared uncompressed sizes capped and every XML member refused if it declares a DTD or entities (so
neither billion-laughs nor external entities reach a parser); then python-calamine reads cached cell values
(formulas are never evaluated). CSV is decoded strictly: utf-8-sig, then cp1252 (or the profile's encoding).
"""
from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice

from core.settings import Settings, get_settings

# openpyxl (used to write exports) is only safe from XML entity attacks with defusedxml installed. This is the test
# openpyxl itself makes (openpyxl.xml.DEFUSEDXML), made without importing openpyxl: reading never needs it, and it
# would add ~20 MB to every import (tests/test_reading.py checks the two agree).
DEFUSEDXML = importlib.util.find_spec("defusedxml") is not None and os.environ.get("OPENPYXL_DEFUSEDXML", "True") == "True"
assert DEFUSEDXML, "defusedxml must be installed (requirements.txt)"

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


class Sheet:
    """A checked, readable sheet whose rows can be walked more than once without holding them all as Python
    lists: an import scans the rows, then reads them again in chunks. Row 1 of the file is the first row
    ``iter_rows`` yields, cells as python values ('' or None when empty)."""

    def __init__(self, kind: str, rows_factory: Callable[[], Iterator[list]], *, encoding: str | None = None,
                 sheet_name: str | None = None, height: int | None = None):
        self.kind = kind
        self.encoding = encoding
        self.sheet_name = sheet_name
        self.height = height  # number of rows when known up front (xlsx)
        self._rows_factory = rows_factory

    def iter_rows(self) -> Iterator[list]:
        return self._rows_factory()

    def head(self, n: int) -> list[list]:
        return list(islice(self.iter_rows(), n))


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


def _open_book(data: bytes, settings: Settings):
    """The workbook, after the zip checks. calamine keeps its own copy of the bytes."""
    import python_calamine

    _check_zip(data, settings)
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises its own error types for every kind of corrupt workbook
        raise FileRejected(f"The workbook could not be read: {exc}") from None


def _load_sheet(book, sheet: str | None, settings: Settings):
    """The named (or first) sheet's cells, loaded by calamine; the workbook is closed afterwards."""
    try:
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
        book.close()  # the sheet holds its own cells; the workbook's copy of the file is not needed any more
    except FileRejected:
        raise
    except Exception as exc:
        raise FileRejected(f"The workbook could not be read: {exc}") from None
    if ws.total_height > settings.max_rows:
        raise FileRejected(f"The sheet has {ws.total_height:,} rows, over the limit of {settings.max_rows:,}.")
    return ws


def _xlsx_sheet(ws) -> Sheet:
    # iter_rows keeps empty rows above the data but drops empty columns left of it: put them back, so every row
    # is exactly what to_python(skip_empty_area=False) gives (column positions as in the file).
    pad = [""] * (ws.start[1] if ws.start else 0)

    def rows() -> Iterator[list]:
        if not pad:
            return ws.iter_rows()
        return (pad + row for row in ws.iter_rows())

    return Sheet("xlsx", rows, sheet_name=ws.name, height=ws.total_height)


# A valid UTF-8 multi-byte sequence (2, 3 or 4 bytes). cp1252 text almost never contains one: an accented capital or
# symbol followed by one or more of 0x80-0xBF (e.g. "Ã©") is mojibake itself, not something a force would type.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}")


def decode_text(data: bytes, encoding: str | None) -> tuple[str, str]:
    """Strict decoding. A UTF-8 byte-order mark always wins (Excel's "CSV UTF-8"); otherwise the profile's
    encoding, or utf-8-sig then cp1252. Never lenient: "Zoë" must not silently become "ZoÃ«".

    cp1252 decodes almost any bytes, so it is tried only for a file that is not UTF-8 at all: a file that is UTF-8
    but for a stray byte (valid multi-byte sequences elsewhere) is refused, naming the line of the bad byte, rather
    than read as cp1252 with every accented name garbled."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    else:
        candidates = [encoding] if encoding else ["utf-8-sig", "cp1252"]
    for enc in candidates:
        try:
            return data.decode(enc, errors="strict"), enc
        except UnicodeDecodeError as exc:
            if not encoding and enc == "utf-8-sig" and _UTF8_MULTIBYTE.search(data):
                line = data.count(b"\n", 0, exc.start) + 1
                column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
                raise FileRejected(
                    f"The file is UTF-8 text except for byte 0x{data[exc.start]:02X} on line {line:,} (byte "
                    f"{column:,} of that line), which is not valid UTF-8. Correct that cell, or save the file from "
                    "Excel again as 'CSV UTF-8'. (If the file really is Windows text, set encoding = \"cp1252\" "
                    "in its profile.)"
                ) from None
            continue
        except LookupError:
            continue
    raise FileRejected(
        f"The file's text could not be decoded as {' or '.join(candidates)}. Save it from Excel as "
        "'CSV UTF-8' or plain CSV."
    )


def _open_csv(data: bytes, encoding: str | None, settings: Settings) -> Sheet:
    """The decoded text is kept; each walk over the rows parses it again (cheap next to holding every row)."""
    if b"\x00" in data[:65536]:
        raise FileRejected("The file is not a spreadsheet or CSV (it contains binary data).")
    text, used = decode_text(data, encoding)
    sample = text[:16384]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    max_rows = settings.max_rows

    def rows() -> Iterator[list]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        n = 0
        try:
            for row in reader:
                n += 1
                if n > max_rows:
                    raise FileRejected(f"The file has more than {max_rows:,} rows, over the limit.")
                yield row
        except csv.Error as exc:
            raise FileRejected(f"The CSV is malformed near line {reader.line_num}: {exc}.") from None

    return Sheet("csv", rows, encoding=used)


class OpenedFile:
    """A file that passed the checks that need no parsing (size, type, for xlsx the zip's sizes and XML parts), not
    yet read into rows. For xlsx calamine has its own copy of the bytes, so the caller may let go of its copy before
    ``sheet`` loads the cells (the moment memory peaks)."""

    def __init__(self, kind: str, settings: Settings, book=None, csv_sheet: Sheet | None = None):
        self.kind = kind
        self._settings = settings
        self._book = book
        self._csv_sheet = csv_sheet

    def sheet(self, name: str | None = None) -> Sheet:
        """The named (xlsx; default the first) sheet; a CSV has one."""
        if self._csv_sheet is not None:
            return self._csv_sheet
        return _xlsx_sheet(_load_sheet(self._book, name, self._settings))


def open_file(data: bytes, file_name: str, *, encoding: str | None = None,
              settings: Settings | None = None) -> OpenedFile:
    """Every check that comes before reading cells, or ``FileRejected`` with a plain reason."""
    settings = settings or get_settings()
    if not data:
        raise FileRejected("The file is empty.")
    if len(data) > settings.max_upload_bytes:
        raise FileRejected(
            f"The file is {len(data) / 1e6:,.1f} MB, over the limit of {settings.max_upload_bytes / 1e6:,.0f} MB."
        )
    if data.startswith(XLSX_MAGIC):
        return OpenedFile("xlsx", settings, book=_open_book(data, settings))
    if data.startswith(OLE_MAGIC):
        raise FileRejected("This is an old Excel 97-2003 (.xls) file or a password-protected workbook. Save it as .xlsx or CSV.")
    if file_name.lower().endswith((".xlsx", ".xlsm")):
        raise FileRejected("The file is named .xlsx but is not an Excel workbook (it may be corrupt).")
    return OpenedFile("csv", settings, csv_sheet=_open_csv(data, encoding, settings))


def open_sheet(data: bytes, file_name: str, *, sheet: str | None = None, encoding: str | None = None,
               settings: Settings | None = None) -> Sheet:
    """The file's sheet, after every check, ready to be walked row by row; or ``FileRejected`` with a plain
    reason."""
    return open_file(data, file_name, encoding=encoding, settings=settings).sheet(sheet)


def read_rows(data: bytes, file_name: str, *, sheet: str | None = None, encoding: str | None = None,
              settings: Settings | None = None, nrows: int | None = None) -> RawSheet:
    """All rows of the file (or the first ``nrows``) as lists, or ``FileRejected`` with a plain reason. For small
    reads (previews, profile detection); an import walks ``open_sheet`` instead."""
    settings = settings or get_settings()
    opened = open_file(data, file_name, encoding=encoding, settings=settings)
    if opened.kind == "xlsx":
        ws = _load_sheet(opened._book, sheet, settings)
        try:
            rows = ws.to_python(skip_empty_area=False, nrows=nrows) if nrows else ws.to_python(skip_empty_area=False)
        except Exception as exc:
            raise FileRejected(f"The workbook could not be read: {exc}") from None
        return RawSheet(rows=rows, kind="xlsx", sheet_name=ws.name)
    csv_sheet = opened.sheet()
    rows = csv_sheet.head(nrows) if nrows else list(csv_sheet.iter_rows())
    return RawSheet(rows=rows, kind="csv", encoding=csv_sheet.encoding)
