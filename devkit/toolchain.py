"""The toolchain, one way for every caller: the python3.12 this project uses, `sam build`, and the
size of a built tree. The rules live in scripts/ (the Makefile runs them before any virtualenv
exists); this module runs them for the tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIND_PYTHON312 = ROOT / "scripts" / "find-python312"
SAM_BUILD = ROOT / "scripts" / "sam-build"
FUNCTION_ID = "ResumeStreamsFunction"
LAYER_ID = "DependenciesLayer"


class ToolchainError(RuntimeError):
    """A tool is missing or failed; the message says what to run."""


def python312() -> Path:
    """The python3.12 the Makefile uses ($PYTHON312, pyenv's newest 3.12, python3.12 on PATH).

    Raises ToolchainError when there is none."""
    found = subprocess.run([str(FIND_PYTHON312)], capture_output=True, text=True, check=False, timeout=60)  # noqa: S603
    if found.returncode != 0 or not found.stdout.strip():
        raise ToolchainError("python3.12 not found: install it (e.g. pyenv install 3.12) or set PYTHON312")
    return Path(found.stdout.strip())


@dataclass(frozen=True)
class Build:
    """What `sam build` made: the build directory and the function's and layer's trees."""

    directory: Path

    @property
    def template(self) -> Path:
        return self.directory / "template.yaml"

    @property
    def function_dir(self) -> Path:
        return self.directory / FUNCTION_ID

    @property
    def layer_dir(self) -> Path:
        """The layer's root: its packages are under python/."""
        return self.directory / LAYER_ID


def sam_build(directory: Path, *, timeout: float) -> Build:
    """`sam build` into `directory` (scripts/sam-build). Stops the whole build, pip included, if
    it is not done within `timeout` seconds.

    Raises ToolchainError with the build's output when it fails or times out."""
    process = subprocess.Popen(  # noqa: S603 - the project's own script
        [str(SAM_BUILD), "--build-dir", str(directory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its pip children are stopped with it
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise ToolchainError(f"sam build did not finish within {timeout:.0f} s:\n{output[-3000:]}") from None
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0:
        raise ToolchainError(f"sam build failed:\n{output[-3000:]}")
    return Build(directory)


def tree_size(root: Path) -> int:
    """Bytes of every file under `root`, unzipped, links not followed."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())
