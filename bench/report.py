"""What a run leaves behind: the table on stdout (with the import times and the cost under it) and
every raw figure in bench/results/latest.json, plus a dated copy."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import BENCH, Row
from .services import ROOT

RESULTS = BENCH / "results"


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpuCount": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "loadAverage": os.getloadavg(),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        info["cpuModel"] = models[0] if models else None
    return info


def table(rows: Sequence[Row]) -> str:
    header = ("benchmark", "workload", "measured", "baseline (same run)", "ratio", "goal", "met?")
    lines = [header]
    for row in rows:
        met = (
            {True: "met", False: "NOT MET", None: row.status}[row.met] if row.status == "ran" else row.status
        )
        lines.append((row.name, row.workload, row.measured, row.baseline, row.ratio, row.goal, met))
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [lines[0], ("---",) * 7, *lines[1:]])


def write_results(document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(document, indent=2, default=str) + "\n"
    (RESULTS / f"{stamp}.json").write_text(text)
    latest = RESULTS / "latest.json"
    latest.write_text(text)
    return latest


def publish(document: dict[str, Any], rows: Sequence[Row]) -> Path:
    """The table into `document`, `document` into bench/results/, and the table, the import times,
    the cost and the goals not met on stdout; returns latest.json's path."""
    rendered = table(rows)
    document["table"] = rendered
    path = write_results(document)

    print(rendered)
    importtimes = document["importtime"]
    if "ours" in importtimes:
        print("\nimport time, cumulative (ours, python -X importtime, one run):")
        for entry in importtimes["ours"]["topCumulative"]:
            print(f"  {entry['cumulative_ms']:7.1f} ms  {entry['phase']:<11}  {entry['module']}")
    if document["cost"]:
        print("\ncost of a million resumed stream ids (us-east-1 list prices):")
        for scenario, figures in document["cost"]["scenarios"].items():
            print(f"  {scenario}: ${figures['totalDollars']:.4f}  {figures['dollars']}")
    missed = [row.name for row in rows if row.met is False]
    if missed:
        print(f"\nNOT MET: {', '.join(missed)}")
    print(f"\nresults: {path.relative_to(ROOT)}")
    return path
