"""What the layers ship is what the tests ran: layer pins equal the dev environment's versions."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

from tests.conftest import ROOT

PINS = [
    (layer, line.split("==")[0], line.split("==")[1])
    for layer in ("core", "onnxruntime", "training")
    for line in (ROOT / "layers" / layer / "requirements.txt").read_text().splitlines()
    if line and not line.startswith("#")
]


@pytest.mark.parametrize(("layer", "package", "pinned"), PINS)
def test_layer_pin_matches_the_tested_version(layer: str, package: str, pinned: str) -> None:
    assert metadata.version(package) == pinned, f"layers/{layer}/requirements.txt"


# Declared dependencies a layer leaves out on purpose: the Lambda runtime ships botocore and its
# dependencies; onnxruntime's are for its tooling, not for InferenceSession (the layer-recipe
# integration test runs a model with only numpy beside it).
PROVIDED_ELSEWHERE = {
    "core": {"botocore", "python-dateutil", "six", "urllib3"},
    "onnxruntime": {"flatbuffers", "packaging", "protobuf"},
    "training": set(),
}


def _name(requirement: str) -> str:
    return re.split(r"[ ;<>=!~\[]", requirement)[0].lower().replace("_", "-")


def _closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_name(r) for r in metadata.requires(name) or [] if "extra ==" not in r)
    return seen


@pytest.mark.parametrize("layer", ["core", "onnxruntime", "training"])
def test_each_layer_ships_every_runtime_dependency(layer: str) -> None:
    # --no-deps installs are only safe if the pins are closed under dependencies (with the
    # core layer, which every function has).
    pinned = {_name(p) for lay, p, _ in PINS if lay == layer}
    available = pinned | {_name(p) for lay, p, _ in PINS if lay == "core"}
    missing = _closure(pinned) - available - PROVIDED_ELSEWHERE[layer]
    assert not missing, f"layers/{layer}/requirements.txt lacks {sorted(missing)}"
