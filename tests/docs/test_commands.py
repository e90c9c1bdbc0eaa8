"""Every shell command in README.md and docs/*.md runs as written.

The convention, for whoever writes those documents:

- **What is a command.** Fenced blocks whose info string starts with ``sh``, ``bash``, ``shell`` or
  ``console`` hold commands; every other block (``text``, ``json``, ``python``, ``mermaid``) is
  not run. In a ``console`` block only the lines after a ``$ `` prompt are commands (``> ``
  continues one); the other lines are output. A command may span lines (quotes, ``\\``,
  here-documents); blank lines and lines that are only a comment are not commands.
- **How it runs.** A document's commands run top to bottom in one bash session, as a reader
  typing them into one terminal: variables, exports and background jobs carry over, and a
  command may rely on the ones before it. The session starts in a temporary directory that
  mirrors the repository (a symlink to each top-level entry: ``.venv/bin/...``, ``make`` and
  ``events/`` work; new files land outside the repository), with its own ``HOME`` and ``TMPDIR``,
  and with AWS pointed at nothing (``AWS_ENDPOINT_URL=http://127.0.0.1:9``, dummy credentials) until
  a command points it at the local stack (docs/cli.md shows how). Everything the session started is
  ended when the document is done.
- **Passing.** Each command must exit 0 within its own time limit: ``DEFAULT_TIMEOUT`` (60 s;
  the documented commands take a few seconds), or 3x the normal duration on a loaded 2-core
  machine for the slow ones in ``NORMAL_SECONDS``. To show a command that must fail, write
  ``! command``. After a time-out the rest of the document is not run (its state is unknown).
- **Commands that cannot run here** carry a marker and are reported as skipped, not run:
  ``# needs: AWS`` (a real AWS account: ``sam deploy``, ``aws ...``), ``# needs: Docker``
  (``sam local ...``), ``# needs: tools`` (the template tools in ``.venv-tools``, installed from
  PyPI in minutes: ``make test``, ``make build``, ``make lint-template``, ``make bench``; ``make
  test`` would also run this test). The marker is a comment on the command's first line, or for a
  whole block a word in its info string: ``sh needs-aws``, ``sh needs-docker``, ``sh needs-tools``.
- **Rules checked on every command that is not marked:** programs of the virtualenv are called as
  ``.venv/bin/NAME`` (or the document activates it once, ``. .venv/bin/activate``); no literal
  dates (``YYYY-MM-DD``): compute them, or put them in a ``text`` block as a placeholder.

No document has an allowance: a command is run, or marked, or the test fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .commands import Command, Shell, activates_venv, commands, rule_violations, sandbox

pytestmark = pytest.mark.enable_socket

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEFAULT_TIMEOUT = 60.0
# Commands that take long, by their first words: normal seconds on a loaded 2-core machine.
NORMAL_SECONDS = {
    "make demo": 50.0,  # 150 decisions with faults: about 25 s on a quiet machine
    "make lint": 60.0,  # ruff, mypy --strict, import-linter, check-docs
}
# Nothing here is ever a real AWS endpoint or account.
NO_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "doc-test",
    "AWS_SECRET_ACCESS_KEY": "doc-test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _all_commands() -> list[Command]:
    return [command for document in DOCUMENTS for command in commands(document, ROOT)]


def _timeout(command: Command) -> float:
    for start, seconds in NORMAL_SECONDS.items():
        if command.first_line.startswith(start):
            return max(DEFAULT_TIMEOUT, 3 * seconds)
    return DEFAULT_TIMEOUT


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    home = tmp_path / "home"
    home.mkdir()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment.pop("VIRTUAL_ENV", None)
    environment |= NO_AWS | {
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "XDG_STATE_HOME": str(home / "state"),
    }
    session = Shell(sandbox(ROOT, tmp_path / "repository"), environment)
    yield session
    session.close()


# The whole document's limit lies above every command's own (the slowest, `make lint`, 180 s):
# README.md takes ~35 s on a loaded 2-core machine.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_command_of_a_document_runs(document: Path, shell: Shell) -> None:
    activated = activates_venv(document)
    failures: list[str] = []
    for command in commands(document, ROOT):
        if command.needs is not None and not rule_violations(command, activated):
            continue  # marked: reported by test_marked_commands_are_not_run
        problems = rule_violations(command, activated)
        if problems:
            failures.append(f"{command.label()}\n    " + "\n    ".join(problems))
            continue
        outcome = shell.run(command.text, _timeout(command))
        if outcome.status == 0:
            continue
        status = "timed out" if outcome.status is None else f"exit {outcome.status}"
        tail = "\n      ".join(outcome.output.splitlines()[-15:])
        failures.append(
            f"{command.label()}\n    {status} after {outcome.seconds:.1f}s; output:\n      {tail}"
        )
        if outcome.status is None:
            failures.append("(the rest of the document was not run: the shell's state is unknown)")
            break
    assert not failures, f"{len(failures)} documented command(s) failed:\n" + "\n".join(failures)


MARKED = [command for command in _all_commands() if command.needs is not None]


@pytest.mark.parametrize("command", MARKED, ids=[command.label()[:80] for command in MARKED])
def test_marked_commands_are_not_run(command: Command) -> None:
    pytest.skip(f"needs {command.needs}: {command.label()}")
