"""The lint step (scripts/lint-template: cfn-lint with the project's rules, checkov, `sam validate
--lint`) passes on template.yaml, and fails on a copy that breaks the visibility-timeout rule:
proof that it reads what it is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit.template import walk

from .conftest import CFN_LINT, LINT_TEMPLATE, ROOT, TEMPLATE, require, run, tool_environment

pytestmark = [pytest.mark.enable_socket, pytest.mark.timeout(600)]

VISIBILITY_LINE = "      VisibilityTimeout: 370\n"
RULES = ROOT / ".cfnlint" / "rules"


# One lint takes ~30 s here; it is stopped at 240 s, inside the test's 600 s.
LINT_SECONDS = 240


def lint(template: Path) -> tuple[int, str]:
    result = run([str(require(LINT_TEMPLATE)), str(template)], env=tool_environment(), timeout=LINT_SECONDS)
    return result.returncode, result.stdout + result.stderr


def test_the_template_passes_cfn_lint_checkov_and_sam_validate() -> None:
    # When the lint step reads template.yaml
    status, output = lint(TEMPLATE)

    # Then every tool is satisfied: no cfn-lint finding, no failed checkov check
    assert status == 0, output
    assert "Failed checks: 0" in output
    assert "is a valid SAM Template" in output


@pytest.mark.parametrize(
    ("visibility", "why"),
    [
        (45, "below the function timeout itself"),
        (300, "above the timeout but below 6 x timeout + batching window"),
    ],
)
def test_a_visibility_timeout_too_short_for_the_function_fails_the_lint_step(
    tmp_path: Path, visibility: int, why: str
) -> None:
    # Given a copy of the template whose resume queue hides a message for too short a time
    source = TEMPLATE.read_text()
    assert source.count(VISIBILITY_LINE) == 1, "the template's VisibilityTimeout line moved: update this test"
    broken = tmp_path / "template.yaml"
    broken.write_text(source.replace(VISIBILITY_LINE, f"      VisibilityTimeout: {visibility}\n"))

    # When the lint step reads it
    status, output = lint(broken)

    # Then it fails, naming the queue, the rule and the arithmetic
    assert status != 0, f"{why}: the lint step accepted it\n{output}"
    assert f"E9101 VisibilityTimeout of ResumeQueue is {visibility} s" in output
    assert "6 x Timeout of ResumeStreamsFunction (60 s)" in output


def test_every_checkov_skip_says_why(template: dict[str, Any]) -> None:
    skips = [
        (path, value)
        for path, value in walk(template["Resources"])
        if len(path) >= 3 and path[-3:-1] == ("checkov", "skip")
    ]

    # the four the template explains; a new one is a decision, to be added here too
    assert sorted(skip["id"] for _, skip in skips) == [
        "CKV_AWS_116",
        "CKV_AWS_117",
        "CKV_AWS_173",
        "CKV_AWS_28",
    ]
    for path, skip in skips:
        assert set(skip) == {"id", "comment"}, path
        assert skip["id"].startswith("CKV"), path
        assert len(skip["comment"].split()) >= 8, f"{path}: a skip needs its reason, not a word"


def test_the_visibility_rule_also_reads_plain_event_source_mappings(tmp_path: Path) -> None:
    # Given a plain CloudFormation trigger (what the SAM transform makes of an SQS event)
    plain = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 100}},
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "app.lambda_handler",
                    "Role": "arn:aws:iam::123456789012:role/resume",
                    "Code": {"ZipFile": "def lambda_handler(event, context): pass"},
                    "Timeout": 60,
                },
            },
            "Trigger": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "FunctionName": {"Ref": "Function"},
                    "MaximumBatchingWindowInSeconds": 5,
                },
            },
        }
    }
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(plain))

    # When cfn-lint reads it with the project's rules
    result = run(
        [str(require(CFN_LINT)), "--append-rules", str(RULES), "--", str(path)], env=tool_environment()
    )

    # Then the rule names the shortfall
    assert result.returncode != 0
    assert "E9101 VisibilityTimeout of Queue is 100 s" in result.stdout
    assert "= 365 s" in result.stdout
