"""The stack's HTTP API as the demo calls it: the way any client would, over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import numpy.typing as npt


def post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def instances(
    columns: Mapping[str, npt.NDArray[Any]], features: list[str], start: int, stop: int
) -> list[dict[str, Any]]:
    """Rows as a client sends them, with the features the served model's signature names."""
    return [
        {
            name: (
                str(columns[name][i]) if columns[name].dtype == object else float(columns[name][i])
            )
            for name in features
        }
        for i in range(start, stop)
    ]
