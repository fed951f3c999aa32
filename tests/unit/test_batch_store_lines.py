"""The batch store's line stream: blocks cut after a newline, multi-byte characters never split,
the lines before invalid UTF-8 delivered before the error; and its failure paths."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlops.adapters import batch_store
from mlops.adapters.batch_store import BatchStore
from mlops.errors import DataValidationError, NotFoundError, StorageError


class OneObject:
    def __init__(self, data: bytes, error: str | None = None) -> None:
        self.data = data
        self.error = error

    def get_object(self, **_: Any) -> dict[str, Any]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "GetObject")
        return {"Body": io.BytesIO(self.data)}


@pytest.mark.parametrize("block", [1, 3, 7, 1 << 20])
def test_lines_survive_any_block_size(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(batch_store, "READ_BLOCK", block)
    text = 'a,b\nZürich,"x\r\ny"\n€,\u2028\nlast'
    lines = list(BatchStore(OneObject(text.encode())).lines("b", "k", None))
    assert lines == ["a,b\n", 'Zürich,"x\r\n', 'y"\n', "€,\u2028\n", "last"]


def test_the_lines_before_invalid_utf8_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_store, "READ_BLOCK", 1 << 20)
    stream = BatchStore(OneObject(b"h\n1\n2\n\xe9\n3\n")).lines("b", "k", None)
    assert [next(stream) for _ in range(3)] == ["h\n", "1\n", "2\n"]
    with pytest.raises(UnicodeDecodeError):
        next(stream)


@pytest.mark.parametrize(
    ("code", "error"), [("NoSuchKey", NotFoundError), ("SlowDown", StorageError)]
)
def test_a_read_that_fails_is_our_error(code: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        list(BatchStore(OneObject(b"", code)).lines("b", "k", None))


@pytest.mark.parametrize("block", [4, 16])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_line_is_read_up_to_the_bound_and_refused_one_byte_past_it(
    monkeypatch: pytest.MonkeyPatch, block: int, where: str
) -> None:
    # Lines of 16 bytes (newline included) on a 16-byte bound, one of them a byte longer
    monkeypatch.setattr(batch_store, "READ_BLOCK", block)
    monkeypatch.setattr(batch_store, "MAX_LINE_BYTES", 16)
    ok = "a" * 15 + "\n"
    at = {"first": 0, "middle": 2, "last": 4}[where]
    lines = [ok] * 5
    read = list(BatchStore(OneObject("".join(lines).encode())).lines("b", "k", None))
    assert read == lines
    lines[at] = "b" * 16 + "\n" if where != "last" else "b" * 17  # the last: no newline
    stream = BatchStore(OneObject("".join(lines).encode())).lines("b", "k", None)
    with pytest.raises(DataValidationError, match=f"line {at + 1} is longer than 16 bytes"):
        list(stream)


def test_a_file_of_one_endless_line_is_not_held_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_store, "READ_BLOCK", 8)
    monkeypatch.setattr(batch_store, "MAX_LINE_BYTES", 64)
    body = Counting(b"," * 10_000)
    with pytest.raises(DataValidationError, match="line 1 "):
        list(BatchStore(body).lines("b", "k", None))
    assert body.read_bytes <= 72  # stopped at the bound, not at the end of the file


class Counting(OneObject):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def get_object(self, **_: Any) -> dict[str, Any]:
        outer = self

        class Body(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                chunk = super().read(size)
                outer.read_bytes += len(chunk)
                return chunk

        return {"Body": Body(self.data)}
