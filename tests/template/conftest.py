"""Fixtures for the template's tests: the tools in .venv-tools (built by `make tools`), the
template as data, one `sam build` per session, and a stand-in for the Lambda runtime's boto3.

Nothing here is skipped when something is missing: a missing tool or interpreter fails the test
that needs it, with what to run.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit import toolchain
from devkit.template import load_template
from devkit.toolchain import Build

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
TOOLS = ROOT / ".venv-tools"
SAM = TOOLS / "sam" / "bin" / "sam"
CFN_LINT = TOOLS / "sam" / "bin" / "cfn-lint"
LINT_TEMPLATE = ROOT / "scripts" / "lint-template"
FUNCTION_ID = toolchain.FUNCTION_ID
# A build normally takes 10-30 s here (the locked wheels from PyPI, pruning, compileall); the
# build's own limit is 8x that or more, for a slow network, and below the test's (600 s).
SAM_BUILD_SECONDS = 240

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


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def python312() -> Path:
    """The python3.12 that builds and runs the artifact, as the Makefile chooses it."""
    try:
        return toolchain.python312()
    except toolchain.ToolchainError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """`sam build` of template.yaml, once per session (scripts/sam-build, as `make build` runs it).
    Its own time limit is well inside the tests' (pyproject.toml), so a stuck build fails with its
    output rather than with a kill."""
    require(SAM)
    try:
        return toolchain.sam_build(tmp_path_factory.mktemp("sam-build") / "build", timeout=SAM_BUILD_SECONDS)
    except toolchain.ToolchainError as error:
        pytest.fail(str(error), pytrace=False)


def _pinned_boto3() -> str:
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        match = re.fullmatch(r"boto3==([0-9.]+)", line.strip())
        if match:
            return match.group(1)
    raise AssertionError("requirements-dev.txt pins no boto3==<version>")


@pytest.fixture(scope="session")
def runtime_boto3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only boto3 and what it needs. It stands in for the boto3 the Lambda
    python3.12 runtime bundles (the layer deliberately leaves it out): the version pinned in
    requirements-dev.txt, linked from this virtualenv rather than downloaded again."""
    pinned = _pinned_boto3()
    installed = importlib.metadata.version("boto3")
    assert installed == pinned, f"the virtualenv has boto3 {installed}, requirements-dev.txt pins {pinned}"
    target = tmp_path_factory.mktemp("lambda-runtime")
    return toolchain.link_distributions(["boto3"], target, with_dependencies=True)


@pytest.fixture(scope="session")
def full_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer before pruning: every distribution requirements.lock pins, linked from this
    virtualenv (`make install` installs them at the lock's versions)."""
    locked = toolchain.locked_versions()
    installed = {name: importlib.metadata.version(name) for name in locked}
    assert installed == locked, (
        f"the virtualenv differs from requirements.lock: run `make install` ({installed})"
    )
    target = tmp_path_factory.mktemp("full-layer")
    return toolchain.link_distributions(locked, target, with_dependencies=False)
