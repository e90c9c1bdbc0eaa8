"""Fixtures for the template's tests: the tools in .venv-tools (built by `make tools`), the
template as data, one `sam build` per session, and a stand-in for the Lambda runtime's boto3.

Nothing here is skipped when something is missing: a missing tool or interpreter fails the test
that needs it, with what to run.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
TOOLS = ROOT / ".venv-tools"
SAM = TOOLS / "sam" / "bin" / "sam"
SAM_PYTHON = TOOLS / "sam" / "bin" / "python"
CFN_LINT = TOOLS / "sam" / "bin" / "cfn-lint"
LINT_TEMPLATE = ROOT / "scripts" / "lint-template"
FUNCTION_ID = "ResumeStreamsFunction"
LAYER_ID = "DependenciesLayer"

# SAM's own YAML reader: it knows CloudFormation's short-form tags (!Ref, !GetAtt, ...).
_TEMPLATE_TO_JSON = (
    "import json, sys\n"
    "from samcli.yamlhelper import yaml_parse\n"
    "with open(sys.argv[1]) as f:\n"
    "    print(json.dumps(yaml_parse(f.read())))\n"
)

_report: dict[str, str] = {}


def report(key: str, line: str) -> None:
    """A line for the end-of-session summary (the build's size, the function's peak memory)."""
    _report[key] = line


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _report:
        terminalreporter.section("template")
        for line in _report.values():
            terminalreporter.write_line(line)


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make tools`", pytrace=False)
    return path


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A command of ours (no shell), its output captured as text."""
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603


def tool_environment(**extra: str) -> dict[str, str]:
    """The environment the tools run in: no telemetry, no update checks."""
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        **extra,
    }


def load_template(path: Path) -> dict[str, Any]:
    result = run([str(require(SAM_PYTHON)), "-c", _TEMPLATE_TO_JSON, str(path)])
    if result.returncode != 0:
        pytest.fail(f"cannot read {path}:\n{result.stderr}", pytrace=False)
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def python312() -> Path:
    """The python3.12 that builds and runs the artifact, as the Makefile chooses it: $PYTHON312,
    else the interpreter this test run's virtualenv was made from, else python3.12 on PATH."""
    candidates = [os.environ.get("PYTHON312", ""), getattr(sys, "_base_executable", "")]
    candidates.append(shutil.which("python3.12") or "")
    for candidate in filter(None, candidates):
        probe = run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"])
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return Path(candidate)
    pytest.fail("no python3.12 found: install it or set PYTHON312=/path/to/python3.12", pytrace=False)


@dataclass(frozen=True)
class Build:
    directory: Path
    template: Path
    function_dir: Path
    layer_dir: Path  # the layer's root: its packages are under python/

    def size_in_bytes(self) -> tuple[int, int]:
        """The unzipped size of the function and of the layer: every file, nothing excluded."""
        return _tree_size(self.function_dir), _tree_size(self.layer_dir)


def _tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory, python312: Path) -> Build:
    """`sam build` of template.yaml, once per session, without a container: SAM's python3.12
    workflow runs the first python3.12 on PATH, so ours goes first."""
    directory = tmp_path_factory.mktemp("sam-build") / "build"
    environment = tool_environment(PATH=f"{python312.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = run(
        [str(require(SAM)), "build", "--build-dir", str(directory), "--template-file", str(TEMPLATE)],
        cwd=ROOT,
        env=environment,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(f"sam build failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return Build(
        directory=directory,
        template=directory / "template.yaml",
        function_dir=directory / FUNCTION_ID,
        layer_dir=directory / LAYER_ID,
    )


def _pinned_boto3() -> str:
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        match = re.fullmatch(r"boto3==([0-9.]+)", line.strip())
        if match:
            return match.group(1)
    raise AssertionError("requirements-dev.txt pins no boto3==<version>")


def _requirement_names(distribution: importlib.metadata.Distribution) -> Iterator[str]:
    for requirement in distribution.requires or []:
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        if match:
            yield match.group(0)


@pytest.fixture(scope="session")
def runtime_boto3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only boto3 and what it needs. It stands in for the boto3 the Lambda
    python3.12 runtime bundles (the layer deliberately leaves it out): the version pinned in
    requirements-dev.txt, linked from this virtualenv rather than downloaded again."""
    pinned = _pinned_boto3()
    installed = importlib.metadata.version("boto3")
    assert installed == pinned, f"the virtualenv has boto3 {installed}, requirements-dev.txt pins {pinned}"
    target = tmp_path_factory.mktemp("lambda-runtime")
    pending, seen = ["boto3"], set()
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        distribution = importlib.metadata.distribution(name)
        pending.extend(_requirement_names(distribution))
        for top in {Path(str(file)).parts[0] for file in distribution.files or []}:
            source = Path(str(distribution.locate_file(top)))
            if top.endswith((".dist-info", ".data")) or top in ("..", "bin", "__pycache__"):
                continue
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target
