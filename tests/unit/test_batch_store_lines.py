"""The batch store's line stream: blocks cut after a newline, multi-byte characters never split,
the lines before invalid UTF-8 delivered before the error; and its failure paths."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlops.adapters import batch_store
from mlops.adapters.batch_store import BatchStore
from mlops.errors import NotFoundError, StorageError


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
