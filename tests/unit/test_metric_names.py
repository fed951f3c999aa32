"""Every alarm of the template watches a metric the code publishes under that very name."""

from __future__ import annotations

import re

from mlops.metric_names import Metric
from mlops_cli.emulator.template import load_template
from tests.conftest import ROOT

NAMES = {v for k, v in vars(Metric).items() if k.isupper()}


def test_every_alarm_on_our_namespace_watches_a_metric_we_publish() -> None:
    template = load_template(ROOT / "template.yaml")
    namespace = template["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    ours = [
        (name, spec["Properties"]["MetricName"])
        for name, spec in template["Resources"].items()
        if spec["Type"] == "AWS::CloudWatch::Alarm"
        and spec["Properties"].get("Namespace") == namespace
    ]
    assert ours  # the template does alarm on our metrics
    assert [(alarm, metric) for alarm, metric in ours if metric not in NAMES] == []


def test_every_metric_name_is_used_by_the_code_and_spelled_once() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "layers/core/mlops").rglob("*.py"))
    assert not re.findall(r'name="[A-Z][A-Za-z]+"', source)  # a literal name bypasses Metric
    unused = [k for k in vars(Metric) if k.isupper() and f"Metric.{k}" not in source]
    assert unused == []
