"""The doc-command test's own parts: what counts as a command, the rules, and the shell that
runs them. Each of these would let a broken document pass if it were wrong."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .commands import Command, Shell, commands, rule_violations

DOCUMENT = """\
# Title

```sh
export A=1  # needs: nothing-known
echo "two
lines"
cat <<'EOF'
python here is not a command
EOF
.venv/bin/python -c 'print(1)' \\
  --flag
# only a comment

make demo  # needs: AWS
```

  ```bash
  indented-command --x
  ```

```console
$ .venv/bin/zego-resume --help
usage: zego-resume ...
$ echo one \\
> two
output line
```

```sh needs-docker
sam local invoke
```

```text
not-a-command
```

```python
print("not a shell command")
```
"""


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(DOCUMENT)
    return path


def test_commands_are_whole_and_in_order(document: Path) -> None:
    found = commands(document, document.parent)
    assert [command.text for command in found] == [
        "export A=1  # needs: nothing-known",
        'echo "two\nlines"',
        "cat <<'EOF'\npython here is not a command\nEOF",
        ".venv/bin/python -c 'print(1)' \\\n  --flag",
        "make demo  # needs: AWS",
        "indented-command --x",
        ".venv/bin/zego-resume --help",
        "echo one \\\ntwo",
        "sam local invoke",
    ]
    assert [command.line for command in found] == [4, 5, 7, 10, 14, 18, 22, 24, 30]
    assert [command.needs for command in found] == [
        "nothing-known",
        None,
        None,
        None,
        "AWS",
        None,
        None,
        None,
        "Docker",
    ]


def _command(text: str, needs: str | None = None) -> Command:
    return Command("doc.md", 1, text, needs)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("zego-resume dlq list --dlq-url x", "calls zego-resume"),
        ("FOO=1 python -m zegosim.local", "calls python"),
        ("echo x | pytest -q", "calls pytest"),
        ("X=$(python3 -c 'print(1)')", "calls python3"),
        ("! zego-resume send", "calls zego-resume"),
        (".venv/bin/zego-resume send --at 2030-01-01T00:00:00Z", "a literal date 2030-01-01"),
    ],
)
def test_rules_catch_what_a_reader_could_not_run_later(text: str, complaint: str) -> None:
    problems = rule_violations(_command(text), activates_venv=False)
    assert any(complaint in problem for problem in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        ".venv/bin/zego-resume dlq list --dlq-url x",
        "make local LOCAL_ARGS=--with-function > out &",
        "echo 'python is a word here'  # and zego-resume in a comment",
        "Q=$(.venv/bin/python - <<'EOF'\nimport python\nzego-resume\nEOF\n)",
    ],
)
def test_rules_leave_good_commands_alone(text: str) -> None:
    assert rule_violations(_command(text), activates_venv=False) == []


def test_an_activated_virtualenv_allows_bare_names() -> None:
    assert rule_violations(_command("zego-resume --help"), activates_venv=True) == []


def test_an_unknown_marker_is_an_error() -> None:
    problems = rule_violations(_command("x", needs="nothing-known"), activates_venv=False)
    assert any("unknown marker" in problem for problem in problems)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    session = Shell(tmp_path, dict(os.environ))
    yield session
    session.close()


def test_the_shell_keeps_state_and_reports_each_status(shell: Shell) -> None:
    assert shell.run("export GREETING=hello; cd /", timeout=10).status == 0
    outcome = shell.run('echo "$GREETING from $(pwd)"', timeout=10)
    assert (outcome.status, outcome.output.strip()) == (0, "hello from /")
    assert shell.run("false", timeout=10).status == 1
    assert shell.run("! false", timeout=10).status == 0
    assert shell.run("cat", timeout=10).status == 0  # reads /dev/null, not the commands to come


def test_a_command_past_its_time_limit_is_a_time_out(shell: Shell) -> None:
    started = time.monotonic()
    outcome = shell.run("sleep 30", timeout=1)
    assert outcome.status is None
    assert "timed out" in outcome.output
    assert time.monotonic() - started < 10


def test_a_command_that_ends_the_shell_fails(shell: Shell) -> None:
    assert shell.run("exit 0", timeout=10).status is None


def test_closing_the_shell_ends_its_background_jobs(tmp_path: Path) -> None:
    session = Shell(tmp_path, dict(os.environ))
    outcome = session.run("sleep 300 & echo $!", timeout=10)
    pid = int(outcome.output.strip())
    session.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
