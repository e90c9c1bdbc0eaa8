"""`make demo` (python -m zegosim.demo), run as a process: its summary adds up, keeps retried
calls apart from refused ones, and says where this run's function log is."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from zegosim.demo import shorten

pytestmark = pytest.mark.enable_socket

ROOT = Path(__file__).resolve().parents[2]
# A run of --requests 5 takes about 5 s without faults and 15 s with them on a quiet machine.
RUN_SECONDS = 180


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def number(self, pattern: str) -> int:
        match = re.search(pattern, self.out)
        assert match, f"{pattern!r} not in:\n{self.out}"
        return int(match.group(1))

    @property
    def log_path(self) -> Path:
        match = re.search(r"function log: (\S+)$", self.out, re.MULTILINE)
        assert match, self.out
        return Path(match.group(1))


def _demo(*args: str, tmp: Path) -> Run:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment["TMPDIR"] = str(tmp)  # the run's log directory lands in pytest's, not in /tmp
    completed = subprocess.run(  # noqa: S603 - this virtualenv's python
        [sys.executable, "-m", "zegosim.demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
        env=environment,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _demo("--requests", "5", "--fault-rate", "0", tmp=tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _demo("--requests", "5", "--fault-rate", "0.3", "--seed", "3", tmp=tmp_path_factory.mktemp("demo"))


@pytest.mark.parametrize("which", ["quiet_run", "faulty_run"])
def test_the_stream_ids_named_add_up(which: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(which)
    assert run.code == 0, run.err
    named = run.number(r"stream ids named +(\d+) =")
    resumed = run.number(r"= (\d+) resumed")
    dead_lettered = run.number(r"\+ (\d+) dead-lettered")
    lost = run.number(r"\+ (\d+) lost")
    assert named == resumed + dead_lettered + lost
    assert lost == 0
    assert dead_lettered >= 1  # the stream ZEGO refuses for good


@pytest.mark.parametrize("which", ["quiet_run", "faulty_run"])
def test_zego_calls_add_up_and_a_refusal_is_never_counted_as_retried(
    which: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(which)
    total = run.number(r"ZEGO calls +(\d+) =")
    parts = [
        run.number(r"(\d+)  succeeded"),
        run.number(r"(\d+)  transient fault \(retried\)"),
        run.number(r"(\d+)  rate-limited, 30002 \(retried\)"),
        run.number(r"(\d+)  permanently refused"),
    ]
    assert total == sum(parts)
    # The one stream refused with 30006 is one call, whatever the fault rate: never retried
    assert parts[3] == 1


def test_without_faults_nothing_is_retried(quiet_run: Run) -> None:
    assert quiet_run.number(r"(\d+)  transient fault \(retried\)") == 0
    assert quiet_run.number(r"(\d+) messages handed back") == 0


def test_with_faults_retries_are_shown_as_such(faulty_run: Run) -> None:
    assert faulty_run.number(r"(\d+)  transient fault \(retried\)") > 0


@pytest.mark.parametrize("which", ["quiet_run", "faulty_run"])
def test_a_progress_line_is_printed_only_when_something_changed(
    which: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(which)
    progress = [line.split("]", 1)[1] for line in run.err.splitlines() if re.match(r"\[ *\d+\.\ds\]", line)]
    assert progress
    assert all(before != after for before, after in itertools.pairwise(progress))


def test_each_run_writes_its_function_log_to_a_path_of_its_own(quiet_run: Run, faulty_run: Run) -> None:
    assert quiet_run.log_path != faulty_run.log_path
    assert quiet_run.log_path.parent.name.startswith("zego-resume-demo-")
    for run in (quiet_run, faulty_run):
        assert run.log_path.is_file()
        assert '"decision settled"' in run.log_path.read_text()
        assert f"function log: {run.log_path}" in run.err  # said at the start too


def test_help_gives_the_make_usage_and_each_options_range_and_default(tmp_path: Path) -> None:
    run = _demo("--help", tmp=tmp_path)
    assert run.code == 0
    assert run.out.startswith('usage: make demo DEMO_ARGS="[--requests N]')
    text = " ".join(run.out.split())
    assert "1..5000 (default 150)" in text
    assert "0..0.5 (default 0.12)" in text
    assert "(default 7)" in text


def test_an_option_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    run = _demo("--requests", "0", tmp=tmp_path)
    assert run.code == 2
    assert 'usage: make demo DEMO_ARGS="' in run.err
    assert "--requests must be within 1..5000" in run.err


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("short", "short"),
        ("InvalidStreamIdCharacters: streamIds[0] 'has space' may hold only letters", None),
        ("x" * 100, "x" * 29 + "…"),  # one word longer than the width: cut it must be
        ("a\nmessage  with\tbreaks", "a message with breaks"),
    ],
)
def test_samples_are_cut_at_a_word_boundary(text: str, shown: str | None) -> None:
    result = shorten(text, 30)
    assert len(result) <= 30
    if shown is not None:
        assert result == shown
    else:
        assert result.endswith("…")
        kept = result.removesuffix("…")
        assert text.startswith(kept)
        assert text[len(kept)] in " ,;:"  # the cut falls between words (trailing punctuation dropped)
