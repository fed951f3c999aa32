"""Check a ``sam build`` output against Lambda's limits and the template's size budgets.

For every function in the template: unzipped size of its code plus its layers (budget from the
function's ``Metadata: SizeBudgetMB``, else Lambda's 250 MB), at most 5 layers, and every native
module built for the function's architecture and the runtime's Python. Run by ``make size``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_cli.emulator.template import load_template

MB = 1_000_000
LAMBDA_LIMIT_MB = 250
MAX_LAYERS = 5
ELF_MACHINES = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64
EXTENSION = re.compile(r"\.cpython-(\d)(\d+)-(\w+)-linux-gnu\.so$")
ARCH_TAGS = {"arm64": "aarch64", "x86_64": "x86_64"}


@dataclass
class FunctionReport:
    name: str
    architecture: str
    runtime: str
    budget_mb: float
    parts: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def total_mb(self) -> float:
        return sum(self.parts.values())


def tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def native_problems(path: Path, architecture: str, runtime: str) -> list[str]:
    """Shared objects for another CPU, and extension modules for another Python or CPU."""
    want_machine = ELF_MACHINES[architecture]
    version = runtime.removeprefix("python").split(".")
    problems = []
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if file.is_symlink():
                continue
            with file.open("rb") as fh:
                header = fh.read(20)
            if header[:4] == b"\x7fELF":
                machine = int.from_bytes(header[18:20], "little")
                if machine != want_machine:
                    problems.append(
                        f"{file.relative_to(path)}: ELF machine {machine}, "
                        f"expected {want_machine} ({architecture})"
                    )
            match = EXTENSION.search(name)
            if match and (
                list(match.group(1, 2)) != version or match.group(3) != ARCH_TAGS[architecture]
            ):
                problems.append(f"{file.relative_to(path)}: built for another Python or CPU")
    return problems


def check(template_path: Path, build_dir: Path) -> list[FunctionReport]:
    """One report per function in the template."""
    template = load_template(template_path)
    defaults: dict[str, Any] = template.get("Globals", {}).get("Function", {})
    reports = []
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**defaults, **resource.get("Properties", {})}
        architecture = (props.get("Architectures") or ["x86_64"])[0]
        runtime = str(props.get("Runtime"))
        budget = float(resource.get("Metadata", {}).get("SizeBudgetMB", LAMBDA_LIMIT_MB))
        report = FunctionReport(name, architecture, runtime, min(budget, LAMBDA_LIMIT_MB))
        layers = [layer["Ref"] for layer in props.get("Layers", []) if isinstance(layer, dict)]
        if len(props.get("Layers", [])) > MAX_LAYERS:
            report.problems.append(f"{len(props['Layers'])} layers, Lambda allows {MAX_LAYERS}")
        for part in [name, *layers]:
            built = build_dir / part
            if not built.is_dir():
                report.problems.append(f"{part} was not built ({built} missing)")
                continue
            report.parts[part] = tree_size(built) / MB
            report.problems.extend(
                f"{part}: {p}" for p in native_problems(built, architecture, runtime)
            )
        if report.total_mb > report.budget_mb:
            report.problems.append(
                f"{report.total_mb:.1f} MB unzipped exceeds the budget of {report.budget_mb:.0f} MB"
            )
        reports.append(report)
    return reports


def render(reports: list[FunctionReport]) -> str:
    parts = {r.name: " + ".join(f"{k} {v:.1f}" for k, v in r.parts.items()) for r in reports}
    header = "code + layers (MB, unzipped)"
    width = max([len(header), *(len(p) for p in parts.values())])
    lines = [f"{'function':<28} {'arch':<7} {header:<{width}} {'total':>7} {'budget':>7}  status"]
    for r in reports:
        status = "ok" if not r.problems else "FAIL"
        lines.append(
            f"{r.name:<28} {r.architecture:<7} {parts[r.name]:<{width}} {r.total_mb:>7.1f} "
            f"{r.budget_mb:>7.0f}  {status}"
        )
        lines.extend(f"    - {p}" for p in r.problems[:20])
        if len(r.problems) > 20:
            lines.append(f"    ... and {len(r.problems) - 20} more")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    args = parser.parse_args(argv)
    reports = check(args.template, args.build_dir)
    print(render(reports))
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
