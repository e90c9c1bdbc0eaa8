"""Keeps in the layer only the modules that can run, and drops the rest (the layer's Makefile).

    python3.12 prune.py TARGET roots.txt

TARGET is the layer's `python/` directory after `pip install --target`. roots.txt names the
modules the function (and the runtime's botocore, which imports from the first urllib3 on
sys.path: ours) import from the layer. Everything those modules can import — every `import`
statement, at module level or inside a function, in a `try` or not; only `if TYPE_CHECKING:`
bodies are skipped, as they never run — is kept, with the package data next to it (certifi's
cacert.pem). The rest goes: the Powertools utilities and event handlers the function never
uses, command-line entry points, type stubs and markers, other Pythons' __pycache__, and of
each distribution's .dist-info all but METADATA and the licence files (METADATA is what
vulnerability scanners such as Amazon Inspector read to name a package and its version).

An import by name (importlib.import_module, __import__, LazyLoader) cannot be followed by
reading the code: the build fails on one in a kept module until roots.txt lists that module
under `reviewed` (and lists what it imports as a root).

Standard library only: it runs wherever `sam build` runs make, in a build container too.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DYNAMIC_IMPORT = re.compile(r"\bimport_module\(|\b__import__\(|\bLazyLoader\(")
DIST_INFO_KEPT = re.compile(r"^(METADATA|LICEN[CS]E.*|COPYING.*|NOTICE.*|AUTHORS.*|licenses)$", re.IGNORECASE)
DATA_DROPPED = {"py.typed"}
NOT_CODE = ("bin", "__pycache__")
SUFFIXES_DROPPED = (".pyi", ".pyc", ".pyo", ".c", ".h", ".pxd", ".pyx")


@dataclass
class Roots:
    modules: list[str] = field(default_factory=list)
    reviewed: set[str] = field(default_factory=set)  # modules whose by-name imports are accounted for
    cut: set[str] = field(default_factory=set)  # imports never followed (see roots.txt)

    def is_cut(self, module: str) -> bool:
        return any(module == cut or module.startswith(cut + ".") for cut in self.cut)

    @classmethod
    def read(cls, path: Path) -> Roots:
        roots = cls()
        for raw in path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] == "reviewed" and len(words) == 2:
                roots.reviewed.add(words[1])
            elif words[0] == "cut" and len(words) == 2:
                roots.cut.add(words[1])
            elif len(words) == 1:
                roots.modules.append(words[0])
            else:
                raise SystemExit(f"{path}: cannot read {raw!r}")
        return roots


def module_index(target: Path) -> dict[str, Path]:
    """Module name -> its source file (a package's __init__.py), for every .py under target."""
    index: dict[str, Path] = {}
    sources = (Path(folder, name) for folder, _, names in os.walk(target, followlinks=True) for name in names)
    for path in sorted(source for source in sources if source.suffix == ".py"):
        relative = path.relative_to(target)
        if any(part.endswith((".dist-info", ".data")) or part in NOT_CODE for part in relative.parts):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and all(part.isidentifier() for part in parts):
            index[".".join(parts)] = path
    return index


def with_parents(modules: Iterable[str]) -> set[str]:
    """`modules` and the packages they are in (importing a.b.c runs a and a.b first)."""
    return {
        ".".join(parts[:depth])
        for parts in (m.split(".") for m in modules)
        for depth in range(1, len(parts) + 1)
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(body: Iterable[ast.stmt]) -> Iterator[ast.AST]:
    """Every node under `body`, leaving out the bodies of `if TYPE_CHECKING:`."""
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, index: dict[str, Path], roots: Roots | None = None) -> set[str]:
    """The modules of `index` that module `name` can import, with the packages they are in;
    leaving out the imports `roots` cuts, and the packages only they would have run."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _nodes(tree.body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            found.add(base)
            for alias in node.names:
                if alias.name == "*":  # whatever the package's __all__ names: all its submodules
                    found.update(module for module in index if module.startswith(base + "."))
                else:
                    found.add(f"{base}.{alias.name}")
    if roots is not None:
        found = {module for module in found if not roots.is_cut(module)}
    return {module for module in with_parents(found) if module in index}


def closure(roots: Roots, index: dict[str, Path]) -> set[str]:
    """The roots and everything they can import, within the layer."""
    missing = [root for root in roots.modules if root not in index]
    if missing:
        raise SystemExit(f"prune: roots.txt names modules the layer does not have: {', '.join(missing)}")
    kept: set[str] = set()
    pending = sorted(with_parents(roots.modules))
    unreviewed: list[str] = []
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        kept.add(name)
        path = index[name]
        by_name = DYNAMIC_IMPORT.search(path.read_text(encoding="utf-8", errors="replace"))
        if by_name and name not in roots.reviewed:
            unreviewed.append(name)
        pending.extend(imports_of(name, path, index, roots) - kept)
    if unreviewed:
        raise SystemExit(
            "prune: these kept modules import by name, which prune.py cannot follow: "
            f"{', '.join(sorted(unreviewed))}. Read them, list what they import as roots in roots.txt, "
            "and mark each `reviewed <module>`."
        )
    return kept


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink())


def prune(target: Path, roots: Roots) -> tuple[set[str], list[Path]]:
    """Drops from `target` what `roots` cannot reach; returns the kept modules and what was removed."""
    index = module_index(target)
    kept = closure(roots, index)
    kept_files = {index[name] for name in kept}
    kept_packages = {index[name].parent for name in kept if index[name].name == "__init__.py"}
    removed: list[Path] = []

    def remove(path: Path) -> None:
        removed.append(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    # which files each distribution installed, read before RECORD goes
    owned = {dist_info: _recorded_files(target, dist_info) for dist_info in target.glob("*.dist-info")}
    for entry in sorted(target.iterdir()):
        if entry.name.endswith(".data") or entry.name in NOT_CODE:
            remove(entry)
    for path in sorted(target.rglob("*"), reverse=True):  # files before the directories holding them
        relative = path.relative_to(target)
        if relative.parts[0].endswith(".dist-info") or not path.exists():
            continue
        if path.is_dir():
            if path.name == "__pycache__" or not any(path.iterdir()):
                remove(path)
            continue
        if path.suffix == ".py":
            if path not in kept_files:
                remove(path)
        elif path.name in DATA_DROPPED or path.suffix in SUFFIXES_DROPPED:
            remove(path)
        elif path.parent != target and path.parent not in kept_packages:
            remove(path)  # data, or a compiled module, of a package nothing imports
    for dist_info, files in owned.items():
        if not any(file.exists() for file in files):  # nothing of it is shipped: its record goes too
            remove(dist_info)
            continue
        for item in sorted(dist_info.iterdir()):
            if not DIST_INFO_KEPT.match(item.name):
                remove(item)
    return kept, removed


def _recorded_files(target: Path, dist_info: Path) -> list[Path]:
    """The files a distribution installed outside its .dist-info, from its RECORD."""
    record = dist_info / "RECORD"
    if not record.exists():
        return [dist_info]  # unknown: treated as shipped
    files = []
    with record.open(newline="", encoding="utf-8") as rows:
        for row in csv.reader(rows):
            name = row[0] if row else ""
            if name and not name.startswith(("../", "/")) and not name.split("/")[0].endswith(".dist-info"):
                files.append(target / name)
    return files


def top_level_sizes(target: Path) -> dict[str, int]:
    return {entry.name: tree_bytes(entry) for entry in sorted(target.iterdir())}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    target, roots_file = Path(argv[0]), Path(argv[1])
    before = top_level_sizes(target)
    kept, removed = prune(target, Roots.read(roots_file))
    after = top_level_sizes(target)
    print(f"prune: kept {len(kept)} modules, removed {len(removed)} files and directories")
    for name, size in sorted(before.items(), key=lambda item: -item[1]):
        print(f"prune: {name:<48} {size:>10,} B -> {after.get(name, 0):>10,} B")
    print(f"prune: {'total':<48} {sum(before.values()):>10,} B -> {sum(after.values()):>10,} B")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
