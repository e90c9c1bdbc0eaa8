"""Shell commands out of Markdown, and a shell that runs them one at a time (tests/docs).

The convention the documents follow is described in test_commands.py.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
NEEDS = {"aws": "AWS", "docker": "Docker", "tools": "tools"}  # marker word -> what is needed
LINE_MARKER = re.compile(r"#\s*needs:\s*([\w-]+)", re.IGNORECASE)
BLOCK_MARKER = re.compile(r"^needs-(\w+)$", re.IGNORECASE)
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
# Programs of the virtualenv: a document calls them as .venv/bin/NAME (or activates it once).
VENV_PROGRAMS = frozenset({"python", "python3", "python3.12", "pip", "pytest", "zego-resume", "ruff", "mypy"})
ACTIVATE = re.compile(r"^\s*(?:\.|source)\s+\.venv/bin/activate\s*$", re.MULTILINE)
# A command word: at the start, or after | ; & ( $( ! and shell keywords, past VAR=value words.
COMMAND_WORD = re.compile(
    r"(?:^|[|;&(]|\$\(|\b(?:then|do|else|if|while|until)\s)\s*(?:!\s+)?(?:[A-Za-z_]\w*=\S*\s+)*([^\s|;&()<>]+)"
)
UNFINISHED = re.compile(r"unexpected (?:EOF|end of file)")
SUBSTITUTION_WORD = re.compile(r"\$\(\s*([^\s|;&()<>]+)")
LITERAL_DATE = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)")


@dataclass(frozen=True)
class Command:
    document: str  # path relative to the repository
    line: int  # where the command starts in the document
    text: str  # as bash reads it; may span lines
    needs: str | None  # "AWS", "Docker", "tools": not run here; or an unknown word (an error)

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0]

    def label(self) -> str:
        return f"{self.document}:{self.line}: {self.first_line}"


def commands(path: Path, root: Path) -> list[Command]:
    """Every shell command of a Markdown document, in order."""
    found: list[Command] = []
    document = str(path.relative_to(root))
    for start, info, lines in _blocks(path.read_text(encoding="utf-8")):
        words = info.split()
        if not words or words[0].lower() not in SHELL_LANGUAGES:
            continue
        block_needs = next(
            (NEEDS.get(m.group(1).lower(), m.group(1)) for w in words[1:] if (m := BLOCK_MARKER.match(w))),
            None,
        )
        numbered = list(enumerate(lines, start=start + 1))
        if words[0].lower() == "console":
            numbered = _console_commands(numbered)
        for line, text in _split(numbered):
            marker = LINE_MARKER.search(text.splitlines()[0])
            needs = block_needs
            if marker:
                needs = NEEDS.get(marker.group(1).lower(), marker.group(1))
            found.append(Command(document, line, text, needs))
    return found


def _blocks(markdown: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line of the opening fence, info string, lines inside, dedented by the fence's indent)."""
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if closing and closing["fence"].startswith(fence[0] * len(fence)) and not closing["info"]:
                break
            text = lines[end]
            body.append(text[indent:] if text[:indent].strip() == "" else text.lstrip())
            end += 1
        yield index + 1, opening["info"].strip(), body
        index = end + 1


def _console_commands(numbered: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """In a console block, the lines after a "$ " prompt (and "> " continuations); the rest is output."""
    kept: list[tuple[int, str]] = []
    continuing = False
    for line, text in numbered:
        if text.startswith("$ ") or (continuing and text.startswith("> ")):
            kept.append((line, text[2:]))
            continuing = text.endswith("\\")
        else:
            continuing = False
    return kept


def _split(numbered: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Lines grouped into whole commands: a command ends where bash could run it (no open quote,
    bracket, continuation, or here-document)."""
    pending: list[tuple[int, str]] = []
    for line, text in numbered:
        if not pending and (not text.strip() or text.lstrip().startswith("#")):
            continue
        pending.append((line, text))
        joined = "\n".join(t for _, t in pending)
        if _complete(joined):
            yield pending[0][0], joined
            pending = []
    if pending:  # an unfinished command: bash will say what is wrong with it
        yield pending[0][0], "\n".join(t for _, t in pending)


def _complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    lines = text.splitlines()
    for index, line in enumerate(lines):
        for match in HEREDOC.finditer(line):
            if "<<<" in line[max(0, match.start() - 1) : match.start() + 3]:
                continue
            delimiter = match.group(2)
            if not any(later.strip() == delimiter for later in lines[index + 1 :]):
                return False
    checked = subprocess.run(
        ["bash", "-n"],  # noqa: S607
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    return checked.returncode == 0 or not UNFINISHED.search(checked.stderr)


def outside_heredocs(text: str) -> str:
    """The command without the bodies of its here-documents (code in another language)."""
    kept: list[str] = []
    delimiters: list[str] = []
    for line in text.splitlines():
        if delimiters:
            if line.strip() == delimiters[0]:
                delimiters.pop(0)
            continue
        kept.append(line)
        delimiters.extend(m.group(2) for m in HEREDOC.finditer(line) if "<<<" not in line)
    return "\n".join(kept)


def rule_violations(command: Command, activates_venv: bool) -> list[str]:
    """What the command breaks of the documents' rules (not whether it runs)."""
    problems: list[str] = []
    if command.needs is not None and command.needs not in NEEDS.values():
        problems.append(f"unknown marker 'needs: {command.needs}' (known: {', '.join(NEEDS.values())})")
    text = outside_heredocs(command.text)
    code = "\n".join(line.split(" #", 1)[0] for line in text.splitlines())  # comments aside
    if not activates_venv:
        for word in COMMAND_WORD.findall(code) + SUBSTITUTION_WORD.findall(code):
            if Path(word).name in VENV_PROGRAMS and not word.startswith(".venv/bin/"):
                problems.append(f"calls {word}: write .venv/bin/{Path(word).name}, or activate .venv once")
    for date in LITERAL_DATE.findall(code):
        problems.append(f"a literal date {date}: compute it (it will be in the past one day)")
    return problems


def activates_venv(path: Path) -> bool:
    return bool(ACTIVATE.search(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: timed out, or the shell ended
    output: str
    seconds: float


class Shell:
    """One bash session that runs commands one at a time, as a reader types them into a terminal:
    variables, the working directory and background jobs carry over from one to the next."""

    def __init__(self, cwd: Path, environment: Mapping[str, str]) -> None:
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],  # noqa: S607 - bash from PATH, as a reader's
            cwd=cwd,
            env=dict(environment),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: close() ends every job it started
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, text: str, timeout: float) -> Outcome:
        marker = f"__doc_command_done_{uuid.uuid4().hex}__"
        stdin = self._process.stdin
        assert stdin is not None
        started = time.monotonic()
        # The group reads no stdin of ours (a command that reads stdin would eat the next ones).
        try:
            stdin.write(f"{{\n{text}\n}} < /dev/null\nprintf '\\n{marker} %s\\n' \"$?\"\n")
            stdin.flush()
        except BrokenPipeError:
            return Outcome(None, "the shell has ended", 0.0)
        output: list[str] = []
        deadline = started + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                return Outcome(None, "".join(output) + f"\n[timed out after {timeout:.0f}s]", timeout)
            if line is None:
                return Outcome(None, "".join(output) + "\n[the shell ended]", time.monotonic() - started)
            if marker in line:
                # A background job of the document may write into the same line (its output and
                # the marker share the pipe): what came before the marker is output.
                before, after = line.split(marker, 1)
                output.append(before)
                status = int(after.split()[0])
                return Outcome(status, "".join(output).removesuffix("\n"), time.monotonic() - started)
            output.append(line)

    def close(self) -> None:
        """End the shell and everything it started."""
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
        deadline = time.monotonic() + 10  # background jobs stop on SIGTERM in their own time
        while time.monotonic() < deadline:
            try:
                os.killpg(self._process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return


def sandbox(root: Path, into: Path) -> Path:
    """A directory that looks like the repository (a symlink to each of its top-level entries),
    where files a command creates land outside the repository."""
    into.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        (into / entry.name).symlink_to(entry)
    return into
