"""The local stack reads template.yaml: tags, intrinsics, routes and outputs resolve locally."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.api import build_event, compile_route
from mlops_cli.emulator.template import (
    Resolver,
    Route,
    function_routes,
    load_template,
    parameter_defaults,
)
from tests.conftest import ROOT


@pytest.fixture
def resolver() -> Resolver:
    r = Resolver(
        parameters={"ModelName": "m", "Env": "dev"},
        conditions={"IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]}},
    )
    r.refs["Bucket"] = "local-bucket"
    r.attrs[("Bucket", "Arn")] = "arn:aws:s3:::local-bucket"
    return r


def test_short_form_tags_become_intrinsics(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  A:\n    Properties:\n      X: !Ref B\n"
        "      Y: !GetAtt B.Arn\n      Z: !Sub '${B}-x'\n"
        "      W: !If [C, 1, 2]\n"
    )
    props = load_template(path)["Resources"]["A"]["Properties"]
    assert props == {
        "X": {"Ref": "B"},
        "Y": {"Fn::GetAtt": ["B", "Arn"]},
        "Z": {"Fn::Sub": "${B}-x"},
        "W": {"Fn::If": ["C", 1, 2]},
    }


def test_intrinsics_resolve_against_local_resources(resolver: Resolver) -> None:
    value = {
        "name": {"Ref": "Bucket"},
        "arn": {"Fn::Sub": "${Bucket.Arn}/models/${ModelName}/*"},
        "region": {"Fn::Sub": "${AWS::Region}"},
        "joined": {"Fn::Join": ["-", [{"Ref": "ModelName"}, "x"]]},
        "chosen": {"Fn::If": ["IsDev", "small", "large"]},
        "dropped": {"Fn::If": ["IsDev", {"Ref": "AWS::NoValue"}, "kept"]},
    }
    assert resolver.resolve(value) == {
        "name": "local-bucket",
        "arn": "arn:aws:s3:::local-bucket/models/m/*",
        "region": "us-east-1",
        "joined": "m-x",
        "chosen": "small",
    }


def test_an_unknown_reference_fails_naming_it(resolver: Resolver) -> None:
    with pytest.raises(ConfigError, match="Missing"):
        resolver.resolve({"Ref": "Missing"})


def test_the_project_template_declares_the_inference_routes() -> None:
    template = load_template(ROOT / "template.yaml")
    routes = function_routes(template)
    assert {(r.method, r.path) for r in routes} >= {
        ("POST", "/predict"),
        ("GET", "/model"),
        ("GET", "/health"),
    }
    assert parameter_defaults(template)["ModelName"] == "house-prices"


def test_route_patterns_match_like_api_gateway() -> None:
    assert compile_route(Route("GET", "/items/{id}", "F")).match("/items/42")
    assert not compile_route(Route("GET", "/items/{id}", "F")).match("/items/42/x")
    assert compile_route(Route("ANY", "/files/{proxy+}", "F")).match("/files/a/b")


def test_local_events_have_the_http_api_v2_shape() -> None:
    event = build_event(
        Route("POST", "/predict", "F"),
        method="POST",
        target="/predict?x=1",
        headers={"content-type": "application/json"},
        body=b'{"a": 1}',
        source_ip="127.0.0.1",
        host="127.0.0.1:3000",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /predict"
    assert event["rawQueryString"] == "x=1"
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False
    binary = build_event(
        Route("POST", "/p", "F"),
        method="POST",
        target="/p",
        headers={"content-type": "application/octet-stream"},
        body=b"\x00\x01",
        source_ip="127.0.0.1",
        host="h",
    )
    assert binary["isBase64Encoded"] is True
    assert binary["body"] == "AAE="


def test_sub_keeps_an_escaped_dollar_brace_literal() -> None:
    resolver = Resolver({"Bucket": "b"}, {})
    resolved = resolver.resolve({"Fn::Sub": "s3://${Bucket}/x=${!x}/"})
    assert resolved == "s3://b/x=${x}/"


def test_split_and_join_resolve_like_cloudformation() -> None:
    resolver = Resolver({"Name": "my-stack"}, {})
    resolved = resolver.resolve({"Fn::Join": ["_", {"Fn::Split": ["-", {"Ref": "Name"}]}]})
    assert resolved == "my_stack"


def test_a_name_derived_from_the_stack_id_resolves_to_the_same_uuid_every_run() -> None:
    # The training bucket's name: lowercase and unique whatever the stack is called
    name = {
        "Fn::Sub": [
            "bucket-${StackUuid}",
            {"StackUuid": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}},
        ]
    }
    first, second = (Resolver({}, {}).resolve(name) for _ in range(2))
    assert first == second
    assert re.fullmatch(r"bucket-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", first)
