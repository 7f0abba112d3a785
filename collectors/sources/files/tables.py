"""Rows of an export file: CSV (any Python codec; ``utf-8`` also strips a BOM) or XLSX (openpyxl,
read-only, first or named sheet). Each row comes with its 1-based row number (``line``: a CSV
record, an XLSX row); a file that can't be read at all raises FileRejected naming the line, and a
CSV record the csv module cannot read (a cell over its 128 KiB limit) comes as :class:`RowUnreadable`
in place of its cells, so that the rows around it are still read."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

XLSX_SUFFIXES = (".xlsx", ".xlsm")


class RowUnreadable(ValueError):
    """A CSV record the csv module could not split into cells (the reason)."""


Row = tuple[int, "list[object] | RowUnreadable"]


class FileRejected(ValueError):
    """A file that can't be parsed at all: ``line`` (None when no line applies) and ``reason``."""

    def __init__(self, line: int | None, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}" if line is not None else reason)


def read_rows(path: Path, *, encoding: str, delimiter: str, sheet: str | None) -> Iterator[Row]:
    """The file's rows, as CSV or (by suffix) XLSX."""
    if path.suffix.lower() in XLSX_SUFFIXES:
        return _xlsx_rows(path, sheet)
    return _csv_rows(path.read_bytes(), encoding, delimiter)


def _csv_rows(data: bytes, encoding: str, delimiter: str) -> Iterator[Row]:
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileRejected(line, f"not {encoding} text (byte {data[exc.start]:#04x}); set encoding") from exc
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number = last_line = 0
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader goes on with the next record, if it moved on
            if reader.line_num == last_line:
                raise FileRejected(number, f"not CSV: {exc}") from exc
            last_line = reader.line_num
            yield number, RowUnreadable(f"not CSV: {exc}")
            continue
        last_line = reader.line_num
        yield number, list(cells)


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[Row]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise FileRejected(None, f"not an XLSX workbook: {exc}") from exc
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise FileRejected(None, f"no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        for number, cells in enumerate(worksheet.iter_rows(values_only=True), 1):
            yield number, list(cells)
    finally:
        book.close()
