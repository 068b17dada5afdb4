"""Reading a tenant's CSV file defensively: a size limit, the encoding detected (or named when guessed), binary
files refused, and records numbered by their first line, so that one broken record costs only itself."""

import codecs
import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
FIELD_LIMIT = 1024 * 1024  # above csv's 131,072 default, so a long field gets a message naming its column
SNIFF = 64 * 1024
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its byte order mark starts the same way
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
ARCHIVES = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?): export the sheet as CSV (UTF-8)",
    b"\x1f\x8b": "gzip-compressed: decompress it first",
    b"%PDF": "a PDF document, not CSV",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office file: export the sheet as CSV (UTF-8)",
}
TEXT_CONTROLS = {9, 10, 12, 13}


class FileProblem(ValueError):
    """The file as a whole cannot be read; the message says why and what to do."""


@dataclass
class Record:
    line: int  # the record's first line in the file
    fields: list[str]
    error: str = ""


@dataclass
class Encoding:
    name: str
    notice: tuple[int, str] | None = None  # (line, what was guessed) when the file is not UTF-8


def max_bytes() -> int:
    return getattr(settings, "DATASET_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)


def check_file(path: Path) -> None:
    """Refuse what cannot be a CSV file before reading a line of it."""
    if not path.exists():
        raise FileProblem(f"{path}: no such file")
    if path.is_dir():
        raise FileProblem(f"{path} is a directory, not a file: name the CSV file inside it")
    size = path.stat().st_size
    if size == 0:
        raise FileProblem("the file is empty: it needs a header line and at least one row")
    if size > max_bytes():
        raise FileProblem(
            f"the file is {size:,} bytes; the limit is {max_bytes():,} bytes (DATASET_IMPORT_MAX_BYTES): split it"
        )


def detect_encoding(path: Path) -> Encoding:
    with open(path, "rb") as handle:
        head = handle.read(SNIFF)
    declared = next((name for bom, name in BOMS if head.startswith(bom)), None) or _utf16_without_bom(head)
    if declared and declared != "utf-8-sig":
        if not _decodes(path, declared):
            label = declared[:6].upper()  # UTF-16 or UTF-32, whichever the byte order
            raise FileProblem(f"the file starts as {label} but is not valid {label} throughout: save it again as UTF-8")
        return Encoding(declared)
    if not declared:
        _refuse_binary(head)
    bad = _first_bad_utf8(path)
    if bad is None:
        return Encoding(declared or "utf-8")
    line, byte = bad
    if declared:  # a UTF-8 byte order mark, then bytes of another encoding: guessing would garble the header
        raise FileProblem(
            f"line {line}: not valid UTF-8 (byte 0x{byte:02x}) after a UTF-8 byte order mark: save it again as UTF-8"
        )
    name, label = ("cp1252", "Windows-1252") if _decodes(path, "cp1252") else ("latin-1", "Latin-1")
    return Encoding(name, (line, f"not valid UTF-8 (byte 0x{byte:02x}); read as {label}: save the file as UTF-8"))


def _utf16_without_bom(head: bytes) -> str | None:
    """Mostly-ASCII text in UTF-16 has a NUL in every other byte."""
    even, odd = head[0::2], head[1::2]
    if len(head) < 4:
        return None
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _refuse_binary(head: bytes) -> None:
    for magic, what in ARCHIVES.items():
        if head.startswith(magic):
            raise FileProblem(f"this is {what}")
    controls = sum(1 for byte in head if byte < 32 and byte not in TEXT_CONTROLS)
    if controls > max(8, len(head) // 50):
        raise FileProblem(
            f"this looks like a binary file, not CSV text ({controls:,} control bytes in the first "
            f"{len(head):,}): export it as CSV (UTF-8)"
        )


def _first_bad_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte) of the first byte that is not UTF-8, read in chunks so a large file costs little memory."""
    decoder, lines = codecs.getincrementaldecoder("utf-8")(), 1
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return lines + chunk[: exc.start].count(b"\n"), chunk[exc.start]
            lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return lines, 0
    return None


def _decodes(path: Path, encoding: str) -> bool:
    try:
        with open(path, encoding=encoding) as handle:
            while handle.read(1024 * 1024):
                pass
    except UnicodeDecodeError:
        return False
    return True


class _Lines:
    """The file's lines for csv.reader, numbered. The lines of the record being read are kept, so a record that
    an unclosed quote ran away with can be read again from its second line: the rows it swallowed still land."""

    def __init__(self, handle):
        self._source = enumerate(handle, start=1)
        self._again: deque[tuple[int, str]] = deque()
        self.taken: list[tuple[int, str]] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        numbered = self._again.popleft() if self._again else next(self._source)
        self.taken.append(numbered)
        return numbered[1]

    def reread_after_first(self) -> None:
        self._again.extendleft(reversed(self.taken[1:]))


def records(path: Path, encoding: str) -> Iterator[Record]:
    """Every non-blank record, or a Record with `error` for one csv cannot read."""
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    with open(path, encoding=encoding, newline="") as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines, strict=True)
        while True:
            lines.taken = []
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Record(lines.taken[0][0], [], _broken(lines.taken, exc))
                if len(lines.taken) > 1:
                    lines.reread_after_first()
                    reader = csv.reader(lines, strict=True)
                continue
            if any(field.strip() for field in fields):
                yield Record(lines.taken[0][0], fields)


def _broken(taken: list[tuple[int, str]], exc: csv.Error) -> str:
    first, last = taken[0][0], taken[-1][0]
    reason = str(exc)
    if "end of data" in reason or (last > first and "field limit" in reason):
        return (
            f"a quote opened on line {first} is never closed, so lines {first}-{last} read as one field: "
            'close the quote, or double a quote inside a field ("")'
        )
    if "field limit" in reason:
        return f"a field is longer than {FIELD_LIMIT:,} characters: shorten it"
    if "expected after" in reason:
        return 'a quoted field has text after its closing quote: quote the whole field and double quotes inside ("")'
    return f"this is not valid CSV ({reason})"
