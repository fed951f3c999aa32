"""DISTRIBUTED Map over a CSV object in moto S3: the reader (headers, quoted fields, empty file,
MaxItems, chunk boundaries), batching by count and by bytes, failure tolerance exactly at the
threshold and one past it, and the ResultWriter's objects."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

from mlops_cli.emulator.states import item_reader
from mlops_cli.emulator.states.definition import ItemReader
from mlops_cli.emulator.states.interpreter import StatesError
from mlops_cli.emulator.states.map_run import EXCEEDED, DistributedMap
from mlops_cli.emulator.states.paths import Template
from tests.states.conftest import HandlerError, Kit, definition


@pytest.fixture
def kit(s3_kit: Kit) -> Kit:
    return s3_kit


JOB = {"bucket": "data", "key": "batch/in.csv", "job": "j1"}


def _machine(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(definition("csv_map"))
    state = raw["States"]["ScoreFile"]
    for path, value in changes.items():
        node = state
        *parents, last = path.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return raw


def _put(kit: Kit, text: str, key: str = "batch/in.csv") -> None:
    kit.s3.put_object(Bucket="data", Key=key, Body=text.encode())


def _echo(event: Any) -> Any:
    return {"n": len(event["Items"]), "ids": [item["id"] for item in event["Items"]]}


def _read(kit: Kit, key: str) -> Any:
    return json.loads(kit.s3.get_object(Bucket="data", Key=key)["Body"].read())


def test_csv_rows_become_string_objects_batched_by_count(kit: Kit) -> None:
    # Given a CSV with a header, quoted fields (a comma, a quote, a newline inside) and numbers
    _put(kit, 'id,note,price\n1,"a, b",10\n2,"say ""hi""",2.5\n3,"two\nlines",\n4,x,7\n5,y,8\n')
    kit.runtime.handlers["Scorer"] = _echo

    # When the Map runs with MaxItemsPerBatch 2
    out = kit.run(_machine(), JOB)

    # Then each child got two rows (three batches), values as strings, quotes undone
    events = sorted((e for _, e in kit.runtime.calls), key=lambda e: e["Items"][0]["id"])
    assert [len(e["Items"]) for e in events] == [2, 2, 1]
    assert events[0]["Items"] == [
        {"id": "1", "note": "a, b", "price": "10"},
        {"id": "2", "note": 'say "hi"', "price": "2.5"},
    ]
    assert events[1]["Items"][0] == {"id": "3", "note": "two\nlines", "price": ""}
    assert events[0]["BatchInput"] == {"job": "j1", "source": "s3://data/batch/in.csv"}
    # and the result is the ResultWriter's details, placed by ResultPath
    details = out["map"]["ResultWriterDetails"]
    assert details["Bucket"] == "data"
    assert details["Key"].startswith("results/")
    assert details["Key"].endswith("/manifest.json")
    assert out["map"]["MapRunArn"].split(":")[5] == "mapRun"


def test_result_writer_objects(kit: Kit) -> None:
    _put(kit, "id\n1\n2\n3\n")

    def score(event: Any) -> Any:
        if event["Items"][0]["id"] == "3":
            raise HandlerError("RowError", "row 3 is bad")
        return _echo(event)

    kit.runtime.handlers["Scorer"] = score
    with pytest.raises(StatesError):  # tolerance 0: one failed item fails the Map
        kit.run(_machine(), JOB)
    run_folder = kit.s3.list_objects_v2(Bucket="data", Prefix="results/")["Contents"]
    keys = sorted(obj["Key"].rsplit("/", 1)[-1] for obj in run_folder)
    # results are written even though the Map failed
    assert keys == ["FAILED_0.json", "SUCCEEDED_0.json", "manifest.json"]
    manifest_key = next(o["Key"] for o in run_folder if o["Key"].endswith("manifest.json"))
    manifest = _read(kit, manifest_key)
    assert manifest["DestinationBucket"] == "data"
    assert manifest["ResultFiles"]["PENDING"] == []
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    (failed,) = manifest["ResultFiles"]["FAILED"]
    ok_records = _read(kit, succeeded["Key"])
    assert succeeded["Size"] == len(
        kit.s3.get_object(Bucket="data", Key=succeeded["Key"])["Body"].read()
    )
    assert len(ok_records) == 1
    record = ok_records[0]
    assert record["Status"] == "SUCCEEDED"
    assert json.loads(record["Output"]) == {"n": 2, "ids": ["1", "2"]}
    assert json.loads(record["Input"])["Items"] == [{"id": "1"}, {"id": "2"}]
    assert ":express:" in record["ExecutionArn"]
    (bad,) = _read(kit, failed["Key"])
    assert bad["Status"] == "FAILED"
    assert bad["Error"] == "RowError"
    assert "row 3 is bad" in bad["Cause"]


@pytest.mark.parametrize(
    ("tolerance", "failing", "fails"),
    [
        ({"ToleratedFailureCount": 2}, 2, False),  # exactly at the count
        ({"ToleratedFailureCount": 2}, 3, True),  # one past
        ({"ToleratedFailurePercentage": 30}, 3, False),  # 3 of 10 items = 30 %
        ({"ToleratedFailurePercentage": 30}, 4, True),
        ({}, 1, True),  # nothing tolerated by default
    ],
)
def test_tolerated_failures(kit: Kit, tolerance: dict[str, Any], failing: int, fails: bool) -> None:
    _put(kit, "id\n" + "".join(f"{i}\n" for i in range(10)))

    def score(event: Any) -> Any:
        if int(event["Items"][0]["id"]) < failing:
            raise HandlerError("RowError")
        return {}

    kit.runtime.handlers["Scorer"] = score
    raw = _machine(
        **{"ItemBatcher": None, "ItemSelector": {"Items.$": "States.Array($$.Map.Item.Value)"}},
        **tolerance,
    )
    raw["States"]["ScoreFile"]["MaxConcurrency"] = 1  # ordered, so a count breach is deterministic
    if fails:
        with pytest.raises(StatesError) as failure:
            kit.run(raw, JOB)
        assert failure.value.error == EXCEEDED
    else:
        assert "ResultWriterDetails" in kit.run(raw, JOB)["map"]


def test_a_failed_batch_fails_all_its_items(kit: Kit) -> None:
    # 2 items per batch, one failing batch = 2 failed items: over a count of 1
    _put(kit, "id\n0\n1\n2\n3\n")
    kit.runtime.handlers["Scorer"] = lambda e: (
        (_ for _ in ()).throw(HandlerError("E")) if e["Items"][0]["id"] == "0" else {}
    )
    with pytest.raises(StatesError) as failure:
        kit.run(_machine(ToleratedFailureCount=1), JOB)
    assert failure.value.error == EXCEEDED
    assert "2 of 4 items failed" in failure.value.cause


def test_batching_by_bytes(kit: Kit) -> None:
    # Each item {"id":"N","v":"xxxxxxxxxx"} is 25 bytes of JSON; the envelope
    # {"Items":[...],"BatchInput":{...}} costs the rest: 3 items fit in 160 bytes, 4 do not.
    _put(kit, "id,v\n" + "".join(f"{i},{'x' * 10}\n" for i in range(7)))
    kit.runtime.handlers["Scorer"] = _echo
    out = kit.run(
        _machine(
            **{"ItemBatcher.MaxItemsPerBatch": None, "ItemBatcher.MaxInputBytesPerBatch": 160}
        ),
        JOB,
    )
    assert out["map"]["ResultWriterDetails"]
    sizes = sorted(len(json.dumps(e, separators=(",", ":"))) for _, e in kit.runtime.calls)
    counts = sorted(len(e["Items"]) for _, e in kit.runtime.calls)
    assert counts == [1, 3, 3]
    assert max(sizes) <= 160
    # one more item would not have fitted: 3 items + 26 bytes is over
    assert max(sizes) + 26 > 160


def test_max_items_counts_data_rows_only(kit: Kit) -> None:
    _put(kit, "id\n1\n2\n3\n4\n5\n")
    kit.runtime.handlers["Scorer"] = _echo
    kit.run(_machine(**{"ItemReader.ReaderConfig.MaxItems": 3}), JOB)
    ids = sorted(i for _, e in kit.runtime.calls for i in _echo(e)["ids"])
    assert ids == ["1", "2", "3"]


def test_an_empty_file_runs_no_child_and_succeeds(kit: Kit) -> None:
    _put(kit, "")
    kit.runtime.handlers["Scorer"] = _echo
    out = kit.run(_machine(), JOB)
    assert kit.runtime.calls == []
    manifest = _read(kit, out["map"]["ResultWriterDetails"]["Key"])
    assert manifest["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}


def test_given_headers_read_the_first_row_as_data(kit: Kit) -> None:
    _put(kit, "1,a\n2,b\n")
    kit.runtime.handlers["Scorer"] = _echo
    config = {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["id", "name"]}
    kit.run(_machine(**{"ItemReader.ReaderConfig": config}), JOB)
    ((_, event),) = kit.runtime.calls
    assert event["Items"] == [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]


def test_a_missing_object_fails_the_reader(kit: Kit) -> None:
    with pytest.raises(StatesError) as failure:
        kit.run(_machine(), {**JOB, "key": "batch/none.csv"})
    assert failure.value.error == "States.ItemReaderFailed"
    assert "batch/none.csv" in failure.value.cause
    # and DescribeMapRun would say the Map Run failed
    runner = kit.interpreter.map_runner
    assert isinstance(runner, DistributedMap)
    ((_, record),) = runner.runs.items()
    assert record.status == "FAILED"
    assert record.stop is not None


def test_describe_map_run_counts_items_and_children(kit: Kit) -> None:
    _put(kit, "id\n" + "".join(f"{i}\n" for i in range(5)))

    def score(event: Any) -> Any:
        if event["Items"][0]["id"] == "4":
            raise HandlerError("RowError")
        return {}

    kit.runtime.handlers["Scorer"] = score
    kit.run(_machine(ToleratedFailureCount=1), JOB)
    runner = kit.interpreter.map_runner
    assert isinstance(runner, DistributedMap)
    ((arn, record),) = runner.runs.items()
    described = record.describe()
    assert described["mapRunArn"] == arn
    assert described["status"] == "SUCCEEDED"
    assert described["itemCounts"]["total"] == 5
    assert (described["itemCounts"]["succeeded"], described["itemCounts"]["failed"]) == (4, 1)
    assert (described["executionCounts"]["succeeded"], described["executionCounts"]["failed"]) == (
        2,
        1,
    )


def test_concurrency_is_bounded(kit: Kit) -> None:
    _put(kit, "id\n" + "".join(f"{i}\n" for i in range(40)))
    kit.runtime.handlers["Scorer"] = _echo
    kit.run(_machine(), JOB)
    assert len(kit.runtime.calls) == 20
    assert kit.runtime.most_in_flight <= 3


def test_without_result_writer_the_result_is_the_outputs_in_order(kit: Kit) -> None:
    _put(kit, "id\n" + "".join(f"{i}\n" for i in range(5)))
    kit.runtime.handlers["Scorer"] = _echo
    out = kit.run(_machine(ResultWriter=None), JOB)
    assert out["map"] == [
        {"n": 2, "ids": ["0", "1"]},
        {"n": 2, "ids": ["2", "3"]},
        {"n": 1, "ids": ["4"]},
    ]


# ------------------------------------------------------------------ the reader alone


def _reader(input_type: str = "CSV", **kw: Any) -> ItemReader:
    return ItemReader(input_type=input_type, parameters=Template(lambda d, c: d), **kw)


def _items(data: bytes, reader: ItemReader, max_items: int | None = None) -> list[Any]:
    return list(item_reader.read_items(io.BufferedReader(io.BytesIO(data)), reader, max_items))  # type: ignore[arg-type]


def test_reader_streams_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(item_reader, "CHUNK_BYTES", 7)
    data = b'a,b\n"x\ny",1\n2,"q,r"\n'
    assert _items(data, _reader()) == [{"a": "x\ny", "b": "1"}, {"a": "2", "b": "q,r"}]
    array = json.dumps([{"v": 12345}, [1, 2], "s", 678, None]).encode()
    assert _items(array, _reader("JSON")) == [{"v": 12345}, [1, 2], "s", 678, None]


def test_reader_header_only_and_short_rows() -> None:
    assert _items(b"a,b\n", _reader()) == []
    assert _items(b"a,b,c\n1\n\n2,3,4,5\n", _reader()) == [
        {"a": "1", "b": "", "c": ""},
        {"a": "2", "b": "3", "c": "4"},
    ]


def test_reader_refuses_duplicate_headers_and_bad_json() -> None:
    with pytest.raises(StatesError, match="duplicates"):
        _items(b"a,a\n1,2\n", _reader())
    with pytest.raises(StatesError, match="JSONL line 2"):
        _items(b'{"a":1}\n{oops\n', _reader("JSONL"))
    with pytest.raises(StatesError, match="not a JSON array"):
        _items(b'{"a":1}', _reader("JSON"))
    with pytest.raises(StatesError, match="UTF-8"):
        _items(b"a\n\xff\xfe\n", _reader())
