"""A Distributed Map's ``ItemReader`` over an S3 object (``arn:aws:states:::s3:getObject``),
streamed: the object is read in chunks (``CHUNK_BYTES``), so a 10 GB file costs the same memory
as a 1 MB one.

CSV (``InputType: CSV``): every item is an object of header → string (Step Functions never
converts values), quotes and embedded delimiters/newlines as RFC 4180, headers from the first
row (``FIRST_ROW``) or the definition (``GIVEN``), ``MaxItems`` counting data rows only. Rows
shorter than the header get "" for the missing fields and fields past the header are dropped,
as LocalStack's emulation (snapshot-tested against AWS) does; duplicate headers fail the reader.
Blank lines are skipped and a UTF-8 byte-order mark is dropped (not verified on AWS).
JSON (an array, decoded item by item) and JSONL (one value per line) are read the same way.

The stream comes from an ``objects.ObjectSource`` (moto's store, or any S3 endpoint).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import IO, Any

from mlops_cli.emulator.states.definition import ItemReader
from mlops_cli.emulator.states.interpreter import StatesError
from mlops_cli.emulator.states.objects import CHUNK_BYTES, READER_FAILED


def read_items(stream: IO[bytes], reader: ItemReader, max_items: int | None) -> Iterator[Any]:
    """The object's items, lazily; StatesError(States.ItemReaderFailed) naming the row or
    offset when the object cannot be read as ``reader.input_type``."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    if reader.input_type == "CSV":
        items = _csv_items(text, reader)
    elif reader.input_type == "JSONL":
        items = _jsonl_items(text)
    else:
        items = _json_array_items(text)
    count = 0
    try:
        for item in items:
            if max_items is not None and count >= max_items:
                return
            count += 1
            yield item
    except UnicodeDecodeError as exc:
        raise StatesError(READER_FAILED, f"the object is not UTF-8 text ({exc.reason})") from None
    finally:
        text.close()


def _csv_items(text: IO[str], reader: ItemReader) -> Iterator[dict[str, str]]:
    rows = csv.reader(text, delimiter=reader.delimiter)
    try:
        if reader.header_location == "GIVEN":
            headers = list(reader.headers)
        else:
            headers = next((row for row in rows if row), [])
            if not headers:
                return  # an empty object: no items
            if len(set(headers)) != len(headers):
                raise StatesError(READER_FAILED, "CSV headers cannot contain duplicates.")
        width = len(headers)
        for row in rows:
            if len(row) == width:
                yield dict(zip(headers, row, strict=True))
            elif row:
                padded = row[:width] + [""] * (width - len(row))
                yield dict(zip(headers, padded, strict=True))
    except csv.Error as exc:
        raise StatesError(READER_FAILED, f"CSV row {rows.line_num}: {exc}") from None


def _jsonl_items(text: IO[str]) -> Iterator[Any]:
    for number, line in enumerate(text, start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise StatesError(READER_FAILED, f"JSONL line {number}: {exc}") from None


def _json_array_items(text: IO[str]) -> Iterator[Any]:
    """The items of a JSON array, decoded one by one from a text stream."""
    decoder = json.JSONDecoder()
    buffer, position, offset, eof = "", 0, 0, False

    def fill() -> bool:
        nonlocal buffer, position, offset, eof
        chunk = "" if eof else text.read(CHUNK_BYTES)
        eof = eof or not chunk
        offset += position
        buffer, position = buffer[position:] + chunk, 0
        return bool(chunk)

    def skip_space() -> str:
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                position += 1
            if position < len(buffer):
                return buffer[position]
            if not fill():
                return ""

    def fail(problem: str) -> StatesError:
        return StatesError(READER_FAILED, f"JSON at character {offset + position}: {problem}")

    if skip_space() != "[":
        raise fail("the object is not a JSON array")
    position += 1
    first = True
    while True:
        char = skip_space()
        if char == "]":
            return
        if not first:
            if char != ",":
                raise fail("expected , or ]")
            position += 1
            skip_space()
        first = False
        while True:
            try:
                item, end = decoder.raw_decode(buffer, position)
            except ValueError:
                item, end = None, -1
            # A value that reaches the end of the buffer may be cut (a number, a word).
            if end == -1 or (end == len(buffer) and not eof):
                if fill():
                    continue
                if end == -1:
                    raise fail("invalid JSON value")
            break
        position = end
        yield item
