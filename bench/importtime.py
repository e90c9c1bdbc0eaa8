"""Reads a ``python -X importtime`` trace: where a process's import time goes, split by the
driver's markers into the handler's import and its first event (lazy imports)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from .driver import MARK_PREFIX

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")


@dataclass(frozen=True)
class ImportEntry:
    module: str
    self_ms: float
    cumulative_ms: float
    depth: int  # 0 for a module imported directly, not as a dependency of another
    phase: str  # "import" (importing the handler) or "first event" (imported lazily)


def parse(stderr: str) -> list[ImportEntry]:
    entries: list[ImportEntry] = []
    phase = "start-up"
    for line in stderr.splitlines():
        if line.startswith(MARK_PREFIX):
            marker = line[len(MARK_PREFIX) :]
            phase = {"started": "import", "imported": "first event", "handled": "after"}.get(marker, phase)
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        self_us, cumulative_us, indent, module = match.groups()
        entries.append(
            ImportEntry(
                module=module,
                self_ms=int(self_us) / 1000,
                cumulative_ms=int(cumulative_us) / 1000,
                depth=len(indent) // 2,
                phase=phase,
            )
        )
    return entries


def summary(entries: list[ImportEntry], top: int = 10) -> dict[str, Any]:
    """The `top` most expensive cumulative imports, and self time summed by top-level package."""
    by_package: dict[str, dict[str, float]] = {}
    for entry in entries:
        package = entry.module.split(".")[0]
        if package.startswith("__editable__"):
            package = "(editable-install finder)"
        phases = by_package.setdefault(package, {})
        phases[entry.phase] = phases.get(entry.phase, 0.0) + entry.self_ms
    totals = {
        phase: round(sum(entry.self_ms for entry in entries if entry.phase == phase), 1)
        for phase in ("start-up", "import", "first event")
    }
    ranked = sorted(entries, key=lambda entry: entry.cumulative_ms, reverse=True)[:top]
    packages = sorted(by_package.items(), key=lambda item: sum(item[1].values()), reverse=True)[:top]
    return {
        "totalsMs": totals,
        "topCumulative": [asdict(entry) for entry in ranked],
        "topPackagesBySelfMs": [
            {"package": name, **{phase: round(ms, 1) for phase, ms in phases.items()}}
            for name, phases in packages
        ],
    }
