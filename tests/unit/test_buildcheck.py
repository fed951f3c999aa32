"""The build check catches what would break on Lambda: size, layer count, foreign binaries."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.buildcheck import check, main, render
from mlops_cli.emulator.template import load_template
from tests.conftest import ROOT

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Architectures: [arm64]
Resources:
  Small:
    Type: AWS::Serverless::Function
    Metadata: {SizeBudgetMB: 2}
    Properties:
      Layers: [!Ref Deps]
  Other:
    Type: AWS::Serverless::Function
    Properties:
      Architectures: [x86_64]
  Deps:
    Type: AWS::Serverless::LayerVersion
"""


def elf(machine: int) -> bytes:
    # A 64-bit little-endian ELF header is enough for the check: magic, class, data, e_machine.
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + machine.to_bytes(2, "little") + b"\x00" * 44


def build(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, Path]:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    for name, content in files.items():
        path = tmp_path / "build" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return template, tmp_path / "build"


def test_a_build_for_the_right_platform_within_budget_passes(tmp_path: Path) -> None:
    template, out = build(
        tmp_path,
        {
            "Small/app.py": b"x" * 1000,
            "Deps/python/pkg/_core.cpython-313-aarch64-linux-gnu.so": elf(183),
            "Deps/python/pkg.libs/libblas.so.3": elf(183),
            "Other/app.py": b"",
            "Other/native.cpython-313-x86_64-linux-gnu.so": elf(62),
        },
    )
    reports = check(template, out)
    assert [(r.name, r.problems) for r in reports] == [("Small", []), ("Other", [])]
    assert reports[0].parts["Small"] == 0.001
    assert main(["--template", str(template), "--build-dir", str(out)]) == 0


def test_binaries_for_another_cpu_or_python_are_reported(tmp_path: Path) -> None:
    template, out = build(
        tmp_path,
        {
            "Small/app.py": b"",
            "Deps/python/a.cpython-313-x86_64-linux-gnu.so": elf(62),
            "Deps/python/b.cpython-311-aarch64-linux-gnu.so": elf(183),
            "Other/app.py": b"",
        },
    )
    problems = check(template, out)[0].problems
    assert any(
        "a.cpython-313-x86_64-linux-gnu.so: ELF machine 62, expected 183" in p for p in problems
    )
    assert any(
        "b.cpython-311-aarch64-linux-gnu.so: built for another Python" in p for p in problems
    )
    assert main(["--template", str(template), "--build-dir", str(out)]) == 1


def test_over_budget_and_missing_builds_fail(tmp_path: Path) -> None:
    template, out = build(
        tmp_path,
        {
            "Small/app.py": b"",
            "Deps/python/big.bin": b"\x00" * 2_500_000,
        },
    )
    reports = {r.name: r for r in check(template, out)}
    assert reports["Small"].problems == ["2.5 MB unzipped exceeds the budget of 2 MB"]
    assert any("Other was not built" in p for p in reports["Other"].problems)
    assert "FAIL" in render(list(reports.values()))


def test_a_budget_above_lambdas_limit_is_capped_at_250_mb(tmp_path: Path) -> None:
    template, out = build(tmp_path, {"Small/app.py": b"", "Other/app.py": b""})
    text = template.read_text().replace("SizeBudgetMB: 2}", "SizeBudgetMB: 400}")
    template.write_text(text)
    reports = {r.name: r for r in check(template, out)}
    assert reports["Small"].budget_mb == 250
    assert reports["Other"].budget_mb == 250  # no budget: Lambda's limit


def test_every_function_of_the_project_template_has_a_budget_within_lambdas_limit() -> None:
    template = load_template(ROOT / "template.yaml")
    budgets = {
        name: resource.get("Metadata", {}).get("SizeBudgetMB")
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert budgets
    assert all(isinstance(b, int) and 0 < b <= 250 for b in budgets.values()), budgets
