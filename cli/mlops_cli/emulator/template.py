"""Read ``template.yaml`` and resolve CloudFormation intrinsics against local resources.

The template is the single source of truth for the local stack: resources, environment
variables and HTTP routes all come from it, so a route missing from the template does not
exist locally either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.errors import ConfigError

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "mlops-local"
# Fixed, so names derived from the stack id (a bucket's) are the same on every run.
STACK_ID = (
    f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/"
    "2b9c5a4e-7f1d-4c3b-9e8a-6d5f4c3b2a10"
)
NO_VALUE = object()


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns ``!Ref x`` / ``!GetAtt a.b`` / ``!Sub ...`` into the long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    try:
        with path.open() as fh:
            doc = yaml.load(fh, Loader=_CfnLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict) or "Resources" not in doc:
        raise ConfigError(f"{path} is not a CloudFormation template")
    return doc


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str


@dataclass
class Resolver:
    """Resolves intrinsics; ``refs`` and ``attrs`` map logical ids to local physical values."""

    parameters: dict[str, Any]
    conditions: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": STACK_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise ConfigError(f"template: !Ref {name} has no local value")

    def getatt(self, name: str, attr: str) -> str:
        try:
            return self.attrs[(name, attr)]
        except KeyError:
            raise ConfigError(f"template: !GetAtt {name}.{attr} has no local value") from None

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(i) for i in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._functions().get(key)
            if handler:
                return handler(arg)
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v)
            if resolved is not NO_VALUE:
                out[k] = resolved
        return out

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self.ref,
            "Fn::GetAtt": lambda a: self.getatt(*self.resolve(a)),
            "Fn::Sub": self._sub,
            "Fn::Join": lambda a: str(a[0]).join(str(x) for x in self.resolve(a[1])),
            "Fn::If": lambda a: self.resolve(a[1] if self.condition(a[0]) else a[2]),
            "Fn::Equals": lambda a: self.resolve(a[0]) == self.resolve(a[1]),
            "Fn::Not": lambda a: not self.resolve(a[0]),
            "Fn::And": lambda a: all(self.resolve(x) for x in a),
            "Fn::Or": lambda a: any(self.resolve(x) for x in a),
            "Fn::Select": lambda a: self.resolve(a[1])[int(a[0])],
            "Fn::Split": lambda a: str(self.resolve(a[1])).split(str(a[0])),
            "Condition": self.condition,
        }

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.getatt(*name.split(".", 1)))
            return str(self.ref(name))

        # "${!Name}" is CloudFormation's escape for a literal "${Name}".
        return re.sub(r"\$\{([^}!]+)\}", replace, text).replace("${!", "${")


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default", "") for name, spec in template.get("Parameters", {}).items()}


def function_routes(template: Mapping[str, Any]) -> list[Route]:
    """Every ``HttpApi`` event of every function, as (method, path, function)."""
    routes = []
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                props = event.get("Properties", {})
                routes.append(Route(props["Method"].upper(), props["Path"], name))
    return routes
