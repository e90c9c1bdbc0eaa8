"""The lint step (scripts/lint-template: cfn-lint with the project's rules, checkov, `sam validate
--lint`) passes on template.yaml, and fails on a copy that breaks the visibility-timeout rule
(E9101) or the give-up rule (E9102): proof that it reads what it is given."""

from __future__ import annotations

import copy
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


# ----- E9102: the queue outlasts the function's give-up age ------------------------------------

GIVE_UP_24_ROW = (
    '    "24": {DecisionMaxAgeSeconds: "86400", RedeliveryMaxDelaySeconds: "900", MaxReceiveCount: "116",\n'
    '           MessageRetentionSeconds: "345600"}\n'
)


def cfn_lint(template: dict[str, Any], tmp_path: Path) -> tuple[int, str]:
    """cfn-lint alone, with the project's rules, on a template given as data."""
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    result = run(
        [str(require(CFN_LINT)), "--append-rules", str(RULES), "--", str(path)],
        env=tool_environment(),
        timeout=LINT_SECONDS,
    )
    return result.returncode, result.stdout + result.stderr


def test_a_retention_shorter_than_the_give_up_age_fails_the_lint_step(tmp_path: Path) -> None:
    # Given a copy of the template whose 24-hour row keeps a decision only a day
    source = TEMPLATE.read_text()
    assert source.count(GIVE_UP_24_ROW) == 1, (
        "the template's GiveUpAfter row for 24 h moved: update this test"
    )
    broken = tmp_path / "template.yaml"
    broken.write_text(source.replace(GIVE_UP_24_ROW, GIVE_UP_24_ROW.replace("345600", "86400")))

    # When the lint step reads it
    status, output = lint(broken)

    # Then it fails, naming the queue, the arithmetic and the parameter value it fails for
    assert status != 0, output
    assert "E9102 MessageRetentionPeriod of ResumeQueue is 86400 s" in output
    assert "(86400 s) + REDELIVERY_MAX_DELAY_SECONDS (900 s) + VisibilityTimeout (370 s) = 87670 s" in output
    assert "(with GiveUpAfterHours=24)" in output


def test_too_few_receives_for_the_give_up_age_fail_cfn_lint(template: dict[str, Any], tmp_path: Path) -> None:
    # Given a week's give-up age with fewer receives than a decision failing fast can have
    broken = copy.deepcopy(template)
    broken["Mappings"]["GiveUpAfter"]["168"]["MaxReceiveCount"] = 600

    status, output = cfn_lint(broken, tmp_path)

    assert status != 0, output
    assert "E9102 maxReceiveCount of ResumeQueue is 600, below the 681 receives" in output
    assert "(with GiveUpAfterHours=168)" in output
    assert "GiveUpAfterHours=24" not in output  # the other rows are fine


def test_a_function_counting_other_receives_than_the_queue_fails_cfn_lint(
    template: dict[str, Any], tmp_path: Path
) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["ResumeStreamsFunction"]["Properties"]["Environment"]["Variables"][
        "MAX_RECEIVE_COUNT"
    ] = "5"

    status, output = cfn_lint(broken, tmp_path)

    assert status != 0, output
    assert (
        "E9102 MAX_RECEIVE_COUNT of ResumeStreamsFunction is 5, not the maxReceiveCount of ResumeQueue"
        in output
    )


def test_a_redelivery_cap_sqs_cannot_set_fails_cfn_lint(template: dict[str, Any], tmp_path: Path) -> None:
    broken = copy.deepcopy(template)
    broken["Mappings"]["GiveUpAfter"]["72"]["RedeliveryMaxDelaySeconds"] = 50000

    status, output = cfn_lint(broken, tmp_path)

    assert status != 0, output
    assert (
        "E9102 REDELIVERY_MAX_DELAY_SECONDS of ResumeStreamsFunction is 50000 s, above the 43200 s" in output
    )


def plain_trigger(retention: int, max_receive_count: int) -> dict[str, Any]:
    """A plain CloudFormation queue -> function trigger whose give-up age is a parameter."""
    return {
        "Parameters": {"GiveUpSeconds": {"Type": "Number", "AllowedValues": [3600, 86400], "Default": 3600}},
        "Resources": {
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 400,
                    "MessageRetentionPeriod": retention,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:dead-letters",
                        "maxReceiveCount": max_receive_count,
                    },
                },
            },
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "app.lambda_handler",
                    "Role": "arn:aws:iam::123456789012:role/resume",
                    "Code": {"ZipFile": "def lambda_handler(event, context): pass"},
                    "Timeout": 60,
                    "Environment": {
                        "Variables": {
                            "DECISION_MAX_AGE_SECONDS": {"Ref": "GiveUpSeconds"},
                            "REDELIVERY_MAX_DELAY_SECONDS": "900",
                            "MAX_RECEIVE_COUNT": str(max_receive_count),
                        }
                    },
                },
            },
            "Trigger": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "FunctionName": {"Ref": "Function"},
                },
            },
        },
    }


def test_the_give_up_rule_reads_plain_event_source_mappings_for_every_allowed_value(tmp_path: Path) -> None:
    # Given a plain trigger that is right for an hour's give-up age and wrong for a day's
    status, output = cfn_lint(plain_trigger(retention=87000, max_receive_count=30), tmp_path)

    # Then the rule names both shortfalls, for the day only (a day: 86400 + 900 + 400 s, and
    # 105 receives; an hour: 13 receives)
    assert status != 0, output
    assert "E9102 MessageRetentionPeriod of Queue is 87000 s" in output
    assert "= 87700 s" in output
    assert "E9102 maxReceiveCount of Queue is 30, below the 105 receives" in output
    assert output.count("(with GiveUpSeconds=86400)") == 2
    assert "GiveUpSeconds=3600" not in output

    # and accepts the same trigger sized for a day
    status, output = cfn_lint(plain_trigger(retention=90000, max_receive_count=110), tmp_path)
    assert "E9102" not in output, output
