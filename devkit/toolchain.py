"""The toolchain, one way for every caller: the python3.12 this project uses, `sam build`, the
layer's lock, and the size of a built tree. The rules live in scripts/ and the Makefiles (they
run before any virtualenv exists); this module runs them for the tests and the benchmarks."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import signal
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIND_PYTHON312 = ROOT / "scripts" / "find-python312"
SAM_BUILD = ROOT / "scripts" / "sam-build"
FUNCTION_ID = "ResumeStreamsFunction"
LAYER_ID = "DependenciesLayer"
LAYER_SOURCE = ROOT / "layers" / "dependencies"
LOCK = LAYER_SOURCE / "requirements.lock"


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
    _run_bounded([str(SAM_BUILD), "--build-dir", str(directory)], "sam build", timeout=timeout)
    return Build(directory)


def build_layer(directory: Path, *, prune: bool, timeout: float) -> Path:
    """The layer's Makefile run as `sam build` runs it, into `directory`; with prune=False the
    whole install is kept (with its bytecode all the same). Returns the layer's python/.

    Raises ToolchainError with the build's output when it fails or times out."""
    _run_bounded(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(LAYER_SOURCE),
            f"build-{LAYER_ID}",
            f"ARTIFACTS_DIR={directory}",
            f"LAYER_PYTHON={python312()}",
            f"PRUNE={int(prune)}",
        ],
        "the layer's make",
        timeout=timeout,
    )
    return directory / "python"


def _run_bounded(command: list[str], name: str, *, timeout: float) -> str:
    process = subprocess.Popen(  # noqa: S603 - the project's own scripts and Makefiles
        command,
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
        raise ToolchainError(f"{name} did not finish within {timeout:.0f} s:\n{output[-3000:]}") from None
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0:
        raise ToolchainError(f"{name} failed:\n{output[-3000:]}")
    return output


def tree_size(root: Path) -> int:
    """Bytes of every file under `root`, unzipped, links not followed."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def package_sizes(root: Path) -> dict[str, int]:
    """Bytes of each top-level entry of `root` (a package, a module, a .dist-info), largest first."""
    sizes = {
        entry.name: tree_size(entry) if entry.is_dir() else entry.stat().st_size for entry in root.iterdir()
    }
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def normalise(distribution: str) -> str:
    """A distribution's name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def locked_versions() -> dict[str, str]:
    """Every distribution the layer's requirements.lock pins, with its version."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", LOCK.read_text(), flags=re.MULTILINE)
    return {normalise(name): version for name, version in pins}


def _requirement_names(distribution: importlib.metadata.Distribution) -> Iterator[str]:
    for requirement in distribution.requires or []:
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        if match:
            yield match.group(0)


def link_distributions(names: Iterable[str], target: Path, *, with_dependencies: bool) -> Path:
    """A directory holding only the named distributions of this environment (and, with
    `with_dependencies`, what they need), linked rather than copied. Their .dist-info stay out."""
    pending, seen = list(names), set()
    while pending:
        name = normalise(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        distribution = importlib.metadata.distribution(name)
        if with_dependencies:
            pending.extend(_requirement_names(distribution))
        for top in {Path(str(file)).parts[0] for file in distribution.files or []}:
            source = Path(str(distribution.locate_file(top)))
            if top.endswith((".dist-info", ".data")) or top in ("..", "bin", "__pycache__"):
                continue
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
                _link_bytecode(source, target)
    return target


def _link_bytecode(module: Path, target: Path) -> None:
    """A single-file module's .pyc lives in its directory's __pycache__, which is not linked:
    link the .pyc too (a package's is inside the package's directory, linked with it)."""
    if module.suffix != ".py":
        return
    pyc = Path(importlib.util.cache_from_source(str(module)))
    if pyc.exists():
        (target / "__pycache__").mkdir(exist_ok=True)
        (target / "__pycache__" / pyc.name).symlink_to(pyc)
