"""Package: the `sam build` output's size, function and layer; the build is kept on the Context
for the as-built cold start."""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.common import MB, BenchError, Benchmark, Context, Row
from bench.services import ROOT
from devkit import toolchain

SAM = ROOT / ".venv-tools" / "sam" / "bin" / "sam"
SAM_BUILD_TIMEOUT_SECONDS = 600.0
MIB = 1024 * 1024


def package(context: Context) -> Row:
    row = Row(
        "package",
        "`sam build` output, function + layer, unzipped, bytecode in",
        goal="≤ 10 MB",
    )
    build = build_once(context)
    if build is None:
        row.status = "skipped"
        row.measured = "skipped: run make tools"
        return row
    total = build["functionBytes"] + build["layerBytes"]
    row.measured = (
        f"{total / MB:.2f} MB ({total / MIB:.2f} MiB: function {build['functionBytes'] / 1000:.0f} kB "
        f"+ layer {build['layerBytes'] / MB:.2f} MB; {build['pycFiles']} .pyc)"
    )
    row.baseline = f"the whole layer, unpruned, with .pyc: {build['wholeLayerBytes'] / MB:.2f} MB"
    row.ratio = f"{total / (10 * MB):.2f} of the goal"
    row.met = total <= 10 * MB
    row.figures = build
    return row


def build_quietly(context: Context) -> dict[str, Any] | None:
    try:
        return build_once(context)
    except (BenchError, toolchain.ToolchainError) as error:
        print(f"  (no build for the as-built cold start: {error})", file=sys.stderr)
        return None


def build_once(context: Context) -> dict[str, Any] | None:
    """`sam build` into a temporary directory, as the Makefile runs it (scripts/sam-build), and
    the layer's Makefile once more without pruning (the baseline's layer); None without tools."""
    if context.build is not None:
        return context.build
    if not SAM.exists():
        return None
    started = time.monotonic()
    build = toolchain.sam_build(context.workdir / "sam-build", timeout=SAM_BUILD_TIMEOUT_SECONDS)
    build_seconds = time.monotonic() - started
    whole_layer = context.workdir / "whole-layer"
    toolchain.build_layer(whole_layer, prune=False, timeout=SAM_BUILD_TIMEOUT_SECONDS)
    context.build = {
        "functionDir": str(build.function_dir),
        "layerDir": str(build.layer_dir),
        "wholeLayerDir": str(whole_layer),
        "functionBytes": toolchain.tree_size(build.function_dir),
        "layerBytes": toolchain.tree_size(build.layer_dir),
        "wholeLayerBytes": toolchain.tree_size(whole_layer),
        "layerPackages": toolchain.package_sizes(build.layer_dir / "python"),
        "wholeLayerPackages": toolchain.package_sizes(whole_layer / "python"),
        "pycFiles": sum(1 for _ in build.directory.rglob("*.pyc")),
        "buildSeconds": build_seconds,
    }
    return context.build


BENCHMARK = Benchmark("package", package)
