"""What template.yaml promises, read as a deployment would read it: the aggregate rate limit, the
retry semantics it mirrors from the code, least-privilege IAM, where failures land, and the
env-vars file for `sam local invoke`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit.template import ACCOUNT_ID, REGION, STACK_NAME, Deployment
from zego_resume import config
from zego_resume.adapters import zego_client
from zego_resume.domain import call_plan, deadline, retry

from .conftest import FUNCTION_ID, ROOT

pytestmark = pytest.mark.enable_socket

ZEGO_RATE_LIMIT = 20  # calls per second per AppId (docs/zego-api.md)
SQS_MINIMUM_MAXIMUM_CONCURRENCY = 2


def function(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    deployment = Deployment(template, {"ZegoSecretName": "zego/resume-streams", **parameters})
    properties = deployment.resource(FUNCTION_ID)["Properties"]
    assert isinstance(properties, dict)
    return properties


# ----- the aggregate rate limit ----------------------------------------------------------------


def test_each_instance_gets_the_floor_of_its_share_and_together_they_stay_within_the_budget(
    template: dict[str, Any],
) -> None:
    table = template["Mappings"]["CallsPerInstance"]
    budget = template["Parameters"]["ZegoCallsPerSecond"]
    instances = template["Parameters"]["MaxConcurrentInstances"]

    # Every budget the parameter allows has a row, and ZEGO's limit is the ceiling and the default
    assert (budget["MinValue"], budget["MaxValue"], budget["Default"]) == (
        1,
        ZEGO_RATE_LIMIT,
        ZEGO_RATE_LIMIT,
    )
    assert config.ZEGO_CALLS_PER_SECOND == ZEGO_RATE_LIMIT
    assert set(table) == {str(total) for total in range(1, ZEGO_RATE_LIMIT + 1)}
    assert (instances["MinValue"], instances["MaxValue"]) == (1, ZEGO_RATE_LIMIT)
    for total, row in table.items():
        # one entry per instance count the budget can feed (at least a call per second each)
        assert set(row) == {str(count) for count in range(1, int(total) + 1)}, total
        for count, per_instance in row.items():
            assert int(per_instance) == int(total) // int(count), (total, count)
            assert int(per_instance) >= 1
            assert int(count) * int(per_instance) <= int(total)


@pytest.mark.parametrize(
    ("total", "instances"), [("20", "1"), ("20", "2"), ("20", "3"), ("5", "5"), ("15", "4")]
)
def test_reserved_concurrency_and_pacing_come_from_the_same_two_parameters(
    template: dict[str, Any], total: str, instances: str
) -> None:
    # Given a deployment with this budget and this many instances
    properties = function(template, ZegoCallsPerSecond=total, MaxConcurrentInstances=instances)
    environment = properties["Environment"]["Variables"]
    sqs = properties["Events"]["ResumeRequests"]["Properties"]

    # Then at most `instances` invocations run (for every trigger), each pacing itself at the floor
    per_instance = int(environment["ZEGO_MAX_CALLS_PER_SECOND"])
    assert str(properties["ReservedConcurrentExecutions"]) == instances
    assert per_instance == int(total) // int(instances) >= 1
    assert int(instances) * per_instance <= int(total) <= ZEGO_RATE_LIMIT
    # and the SQS poller asks for no more than that (but never below SQS's minimum of 2)
    assert int(sqs["ScalingConfig"]["MaximumConcurrency"]) == max(
        SQS_MINIMUM_MAXIMUM_CONCURRENCY, int(instances)
    )


def test_more_instances_than_calls_per_second_cannot_be_deployed(template: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="Unable to get mapping for CallsPerInstance::5::6"):
        function(template, ZegoCallsPerSecond="5", MaxConcurrentInstances="6")


# ----- retry semantics mirrored from the code --------------------------------------------------


def worst_call_seconds() -> float:
    """One ZEGO call's longest retry chain in one invocation: every attempt waits out its connect
    and read timeouts, every back-off is at its longest, and the safety margin is kept."""
    policy = retry.RetryPolicy()
    attempts = call_plan.ATTEMPTS_PER_RECEIVE
    per_attempt = zego_client.CONNECT_TIMEOUT_SECONDS + config.DEFAULT_READ_TIMEOUT_SECONDS
    back_off = sum(min(policy.max_delay, policy.base_delay * 2.0**attempt) for attempt in range(attempts - 1))
    safety_margin = deadline.SAFETY_MARGIN_SECONDS
    return attempts * per_attempt + back_off + safety_margin


def test_the_function_timeout_covers_one_calls_whole_retry_chain(template: dict[str, Any]) -> None:
    properties = function(template)

    assert properties["Timeout"] >= worst_call_seconds()


def test_the_queue_outlasts_lambdas_retries_and_the_dlq_outlasts_the_queue(template: dict[str, Any]) -> None:
    deployment = Deployment(template, {"ZegoSecretName": "zego/resume-streams"})
    queue = deployment.resource("ResumeQueue")["Properties"]
    dead_letters = deployment.resource("DeadLetterQueue")["Properties"]
    properties = function(template)
    sqs = properties["Events"]["ResumeRequests"]["Properties"]

    # AWS's rule for SQS event sources (also enforced by .cfnlint/rules on every lint)
    assert queue["VisibilityTimeout"] >= 6 * properties["Timeout"] + sqs["MaximumBatchingWindowInSeconds"]
    # a dead letter keeps the source's enqueue time: the DLQ must keep it longer, 14 days
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600 > queue["MessageRetentionPeriod"]
    # a dead letter is a source body plus attributes
    assert dead_letters["MaximumMessageSize"] == 1_048_576 > queue["MaximumMessageSize"] == 262_144
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_queue_and_the_function_count_receives_from_one_parameter(template: dict[str, Any]) -> None:
    deployment = Deployment(template, {"ZegoSecretName": "zego/resume-streams", "MaxReceiveCount": "7"})

    redrive = deployment.resource("ResumeQueue")["Properties"]["RedrivePolicy"]
    environment = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]

    assert redrive["maxReceiveCount"] == environment["MAX_RECEIVE_COUNT"] == "7"
    assert template["Parameters"]["MaxReceiveCount"]["Default"] == 5
    # only the resume queue may send its dead letters to the DLQ
    allow = deployment.resource("DeadLetterQueue")["Properties"]["RedriveAllowPolicy"]
    assert allow == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{STACK_NAME}-resume-requests"],
    }
    assert deployment.resource("ResumeQueue")["Properties"]["QueueName"] == f"{STACK_NAME}-resume-requests"


def test_async_invocations_retry_a_bounded_number_of_times_then_land_in_the_dlq(
    template: dict[str, Any],
) -> None:
    invoke_config = function(template)["EventInvokeConfig"]

    assert 0 <= invoke_config["MaximumRetryAttempts"] <= 2
    assert invoke_config["MaximumEventAgeInSeconds"] <= 6 * 3600
    assert invoke_config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": "<DeadLetterQueue.Arn>",
    }


# ----- EventBridge and the schedule ------------------------------------------------------------


@pytest.mark.parametrize("bus", ["default", "moderation"])
def test_moderation_events_go_whole_to_the_queue_with_retries_and_a_dlq(
    template: dict[str, Any], bus: str
) -> None:
    deployment = Deployment(template, {"ZegoSecretName": "zego/resume-streams", "EventBusName": bus})
    rule = deployment.resource("ModerationEventsRule")["Properties"]
    (target,) = rule["Targets"]

    assert rule["EventBusName"] == bus
    assert rule["EventPattern"] == {
        "source": ["moderation.appeals", "moderation.rules"],
        "detail-type": ["StreamBanLifted"],
    }
    assert target["Arn"] == "<ResumeQueue.Arn>"
    assert not {"Input", "InputPath", "InputTransformer"} & set(target), "the body must be the whole event"
    assert target["DeadLetterConfig"] == {"Arn": "<DeadLetterQueue.Arn>"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0

    # EventBridge may write to the queues (and through the key) for this rule only. The key
    # policy cannot !GetAtt the rule (a cycle), so its spelled-out ARN must be the rule's.
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/" + ("" if bus == "default" else f"{bus}/")
    rule_arn += rule["Name"]
    key_policy = deployment.resource("EncryptionKey")["Properties"]["KeyPolicy"]
    (events_on_key,) = [
        s for s in key_policy["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert events_on_key["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    queue_policy = deployment.resource("QueuesPolicy")["Properties"]["PolicyDocument"]
    (events_on_queues,) = [s for s in queue_policy["Statement"] if s["Effect"] == "Allow"]
    assert events_on_queues["Principal"] == {"Service": "events.amazonaws.com"}
    assert events_on_queues["Action"] == "sqs:SendMessage"
    assert events_on_queues["Condition"] == {"ArnEquals": {"aws:SourceArn": "<ModerationEventsRule.Arn>"}}


def test_the_example_schedule_is_off_by_default_and_sends_a_valid_request(template: dict[str, Any]) -> None:
    schedule = function(template)["Events"]["ExampleSchedule"]

    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["State"] == "DISABLED"
    assert schedule["Properties"]["Name"] == f"{STACK_NAME}-example-resume"  # unique per account
    assert json.loads(schedule["Properties"]["Input"])["streamIds"] == ["example-stream"]
    assert schedule["Properties"]["DeadLetterConfig"] == {"Arn": "<DeadLetterQueue.Arn>"}


# ----- least privilege -------------------------------------------------------------------------


@pytest.mark.parametrize("tracing", ["PassThrough", "Active"])
def test_no_iam_statement_grants_on_every_resource_but_x_rays(template: dict[str, Any], tracing: str) -> None:
    deployment = Deployment(template, {"ZegoSecretName": "zego/resume-streams", "Tracing": tracing})
    statements = [
        statement
        for role in ("ResumeStreamsRole", "SchedulerRole")
        for policy in deployment.resource(role)["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]

    on_everything = [s for s in statements if "*" in str(s["Resource"])]

    # X-Ray accepts no other resource, and its statement exists only when tracing is on
    expected = [["xray:PutTraceSegments", "xray:PutTelemetryRecords"]] if tracing == "Active" else []
    assert [s["Action"] for s in on_everything] == expected
    environment = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_TRACE_DISABLED"] == ("false" if tracing == "Active" else "true")


def test_the_function_may_touch_its_own_secret_queues_and_key_only(template: dict[str, Any]) -> None:
    deployment = Deployment(template, {"ZegoSecretName": "zego/prod"})
    policies = {
        policy["PolicyName"]: policy["PolicyDocument"]["Statement"]
        for policy in deployment.resource("ResumeStreamsRole")["Properties"]["Policies"]
    }
    grants = {
        (action, statement["Resource"])
        for statements in policies.values()
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }

    assert grants == {
        ("logs:CreateLogStream", "<FunctionLogGroup.Arn>"),
        ("logs:PutLogEvents", "<FunctionLogGroup.Arn>"),
        # Secrets Manager appends a dash and 6 characters to the name: the pattern matches no other
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:zego/prod-??????",
        ),
        ("sqs:ReceiveMessage", "<ResumeQueue.Arn>"),
        ("sqs:DeleteMessage", "<ResumeQueue.Arn>"),
        ("sqs:GetQueueAttributes", "<ResumeQueue.Arn>"),
        ("sqs:SendMessage", "<DeadLetterQueue.Arn>"),
        ("kms:Decrypt", "<EncryptionKey.Arn>"),
        ("kms:GenerateDataKey", "<EncryptionKey.Arn>"),
    }


def test_a_customer_key_on_the_secret_is_usable_only_through_secrets_manager(
    template: dict[str, Any],
) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    deployment = Deployment(template, {"ZegoSecretName": "zego/prod", "ZegoSecretKmsKeyArn": key})

    (policy,) = [
        p
        for p in deployment.resource("ResumeStreamsRole")["Properties"]["Policies"]
        if p["PolicyName"] == "decrypt-zego-secret"
    ]

    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
        }
    ]


# ----- observability ---------------------------------------------------------------------------


def dashboard_metrics(template: dict[str, Any]) -> set[tuple[str, tuple[str, ...]]]:
    """(metric, dimension names) of every metric of the function's namespace the dashboard reads."""
    deployment = Deployment(template, {"ZegoSecretName": "zego/resume-streams"})
    namespace = deployment.parameter("MetricsNamespace")
    body = json.loads(deployment.resource("Dashboard")["Properties"]["DashboardBody"])
    found = set()
    for widget in body["widgets"]:
        for line in widget["properties"]["metrics"]:
            if line[0] == namespace:
                names = [item for item in line[2:] if isinstance(item, str)][::2]
                found.add((line[1], tuple(sorted(names))))
            elif isinstance(line[0], dict) and "ZegoErrors" in line[0]["expression"]:
                found.add(("ZegoErrors", ("ErrorCode", "service")))
    return found


def test_the_dashboard_reads_the_functions_namespace_and_service(template: dict[str, Any]) -> None:
    properties = function(template)
    environment = properties["Environment"]["Variables"]
    body = Deployment(template, {"ZegoSecretName": "x"}).resource("Dashboard")["Properties"]["DashboardBody"]

    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "ZegoStreamModeration"
    assert f'"service", "{environment["POWERTOOLS_SERVICE_NAME"]}"' in body
    assert {name for name, _ in dashboard_metrics(template)} == {
        "StreamIdsResumed",
        "ZegoCalls",
        "ZegoRetries",
        "ZegoErrors",
        "DeadLettered",
        "InvalidRequests",
        "DeadLetterSendFailures",
    }


def test_alarms_watch_the_dlq_errors_throttles_and_the_oldest_decision(template: dict[str, Any]) -> None:
    alarms = {
        (resource["Properties"]["Namespace"], resource["Properties"]["MetricName"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }

    assert alarms == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    }


def test_outputs_name_what_producers_and_operators_need(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= {
        "ResumeQueueUrl",
        "ResumeQueueArn",
        "DeadLetterQueueUrl",
        "FunctionArn",
        "EventBusName",
    }


# ----- sam local invoke ------------------------------------------------------------------------


def test_the_env_vars_file_sets_only_variables_the_function_declares(template: dict[str, Any]) -> None:
    env_vars = json.loads((ROOT / "locals.json").read_text())
    declared = template["Resources"][FUNCTION_ID]["Properties"]["Environment"]["Variables"]

    # `sam local invoke --env-vars` only overrides variables the template declares
    assert set(env_vars) == {FUNCTION_ID}
    assert set(env_vars[FUNCTION_ID]) <= set(declared)
    assert {"ZEGO_SECRET_ID", "DEAD_LETTER_QUEUE_URL", "ZEGO_API_BASE_URL"} <= set(env_vars[FUNCTION_ID])
    assert all(isinstance(value, str) for value in env_vars[FUNCTION_ID].values())


def test_samconfig_deploys_the_template_with_the_capabilities_it_needs() -> None:
    import tomllib

    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    deploy = samconfig["default"]["deploy"]["parameters"]

    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert samconfig["default"]["local_invoke"]["parameters"]["env_vars"] == "locals.json"
    assert Path(ROOT / samconfig["default"]["local_invoke"]["parameters"]["env_vars"]).is_file()
