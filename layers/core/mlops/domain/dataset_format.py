"""What a training file's bytes are, before any row is read: its size (gzip inflated only up
to the limit) and its format (UTF-8, comma-delimited CSV text, not a file uploaded by mistake)."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from typing import TYPE_CHECKING

from mlops.domain.config import ModelConfig
from mlops.domain.dataset_report import ReportBuilder, plural

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20
# Files people upload by mistake, by their first bytes. ASCII-only signatures that a CSV header
# could start with (Parquet's "PAR1", bzip2's "BZh") are checked more strictly in _binary_kind.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one: export the sheet as CSV)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Excel (.xls) workbook or other OLE2 file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (only gzip is supported)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (only gzip is supported)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


def check_size(data: bytes, max_bytes: int, report: ReportBuilder) -> bytes:
    """The CSV bytes, decompressed if gzip; a gzip bomb is stopped past ``max_bytes``."""
    limit = f"the limit of {max_bytes:,} bytes (validation.max_bytes)"
    if len(data) > max_bytes:
        raise report.stop("size", f"the file is {len(data):,} bytes, above {limit}")
    if data[:2] != _GZIP_MAGIC:
        report.stats["uncompressed_bytes"] = len(data)
        report.add("size", "pass", f"{len(data):,} bytes, within {limit}")
        return data
    report.stats["compression"] = "gzip"
    chunks: list[bytes] = []
    total = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            # Never more than max_bytes + 1 bytes inflated: enough to know the limit is passed.
            while chunk := stream.read(min(_READ_CHUNK, max_bytes + 1 - total)):
                total += len(chunk)
                if total > max_bytes:
                    raise report.stop(
                        "size",
                        f"decompressed, the file is more than {max_bytes:,} bytes, above "
                        f"{limit} ({len(data):,} bytes stored; reading stopped there)",
                    )
                chunks.append(chunk)
    except EOFError:
        report.add("size", "pass", f"{len(data):,} bytes stored, within {limit}")
        raise report.stop(
            "format", "not a valid gzip file: it ends before its compressed data does (truncated?)"
        ) from None
    except (OSError, zlib.error) as exc:
        report.add("size", "pass", f"{len(data):,} bytes stored, within {limit}")
        raise report.stop("format", f"not a valid gzip file ({exc})") from None
    report.stats["uncompressed_bytes"] = total
    report.add(
        "size",
        "pass",
        f"{len(data):,} bytes stored, {total:,} decompressed, within {limit}",
    )
    return b"".join(chunks)


def check_format(
    text: bytes, config: ModelConfig, report: ReportBuilder
) -> tuple[CsvReader, list[str]]:
    """A csv reader positioned after the header, and the header (names stripped)."""
    compressed = " (gzip-compressed)" if report.stats["compression"] else ""
    kind = _binary_kind(text)
    if kind:
        raise report.stop("format", f"not a CSV file: {kind}")
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(text), encoding="utf-8-sig", newline=""))
    header: list[str] = []
    try:
        for row in reader:  # leading blank lines are skipped
            header = [name.strip() for name in row]
            if any(header):
                break
    except csv.Error as exc:
        raise csv.Error(f"line {reader.line_num}: {exc}") from exc
    if not any(header):
        raise report.stop("format", "the file is empty" if not text.strip() else "no header row")
    hint = _delimiter_hint(header)
    wanted = {*config.feature_names, config.target}
    if hint is None and not wanted <= set(header):
        first = text.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        looks = {b"{": "JSON", b"[": "JSON", b"<": "HTML or XML"}.get(first)
        if looks:
            hint = f"not a CSV file: it looks like {looks}"
    if hint:
        raise report.stop("format", hint)
    report.add(
        "format",
        "pass",
        f"a UTF-8, comma-delimited CSV file{compressed} with {plural(len(header), 'column')}",
    )
    return reader, header


def _binary_kind(data: bytes) -> str | None:
    """Why ``data`` is not CSV text, in words; None when it is UTF-8 text."""
    if not data:
        return None
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return f"it looks like {name}"
    if data.startswith(b"BZh") and data[4:10] == b"1AY&SY":
        return "it looks like a bzip2-compressed file (only gzip is supported)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return 'it is UTF-16 text (Excel\'s "Unicode Text"): export it as "CSV UTF-8"'
    nul = data.find(b"\x00")
    bad_utf8 = None if data.isascii() else _first_invalid_utf8(data)
    if data.startswith(b"PAR1") and (data.endswith(b"PAR1") or nul >= 0 or bad_utf8 is not None):
        return "it looks like a Parquet file"
    if nul >= 0:
        return f"it looks like binary data (it contains NUL bytes, the first at byte {nul:,})"
    if bad_utf8 is None:
        return None
    sample = data[:4096]
    controls = sum(b < 32 and b not in b"\t\r\n" for b in sample)
    if controls > len(sample) // 20:
        return "it looks like binary data (it is not UTF-8 text)"
    line = data.count(b"\n", 0, bad_utf8) + 1
    return (
        f"it is not UTF-8 text (byte 0x{data[bad_utf8]:02x} on line {line:,} is not valid "
        "UTF-8, as in Latin-1 or Windows-1252 text): export it as UTF-8"
    )


def _first_invalid_utf8(data: bytes) -> int | None:
    """The offset of the first byte that is not UTF-8, decoding in bounded chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(data), _READ_CHUNK):
        try:
            decoder.decode(view[start : start + _READ_CHUNK], final=False)
        except UnicodeDecodeError as exc:
            # exc.start counts from the bytes the decoder still held from the previous chunk.
            held = len(decoder.getstate()[0])
            return max(start - held + exc.start, 0)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return len(data) - len(decoder.getstate()[0])
    return None


def _delimiter_hint(header: list[str]) -> str | None:
    if len(header) != 1:
        return None
    semicolons, tabs = header[0].count(";"), header[0].count("\t")
    if semicolons > tabs:
        return "the file looks semicolon-delimited; export it with commas as the delimiter"
    if tabs:
        return "the file looks tab-delimited; export it with commas as the delimiter"
    return None
