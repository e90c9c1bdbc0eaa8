"""What template.yaml promises, read as a deployment would read it: the aggregate rate limit and
the fleet's shared budget, the retry semantics it mirrors from the code, how long a failing
decision is kept, least-privilege IAM, who may lift a ban, where failures land, and the env-vars
file for `sam local invoke`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit.template import (
    ACCOUNT_ID,
    REGION,
    REQUIRED_PARAMETERS,
    STACK_NAME,
    Deployment,
    fleet_shape,
    most_receives_before_give_up,
)
from zego_resume import config
from zego_resume.adapters import zego_client
from zego_resume.domain import call_plan, deadline, retry

from .conftest import FUNCTION_ID, ROOT

pytestmark = pytest.mark.enable_socket

ZEGO_RATE_LIMIT = 20  # calls per second per AppId (docs/zego-api.md)
SQS_MINIMUM_MAXIMUM_CONCURRENCY = 2


def deploy(template: dict[str, Any], **parameters: str) -> Deployment:
    return Deployment(template, {**REQUIRED_PARAMETERS, **parameters})


def function(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    deployment = deploy(template, **parameters)
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

    # Then at most `instances` invocations run (for every trigger), the fleet shares `total`, and
    # each paces itself at the floor of its share when it paces alone
    per_instance = int(environment["ZEGO_MAX_CALLS_PER_SECOND"])
    assert str(properties["ReservedConcurrentExecutions"]) == instances
    assert environment["ZEGO_FLEET_CALLS_PER_SECOND"] == total
    assert per_instance == int(total) // int(instances) >= 1
    assert int(instances) * per_instance <= int(total) <= ZEGO_RATE_LIMIT
    # and the SQS poller asks for no more than that (but never below SQS's minimum of 2)
    assert int(sqs["ScalingConfig"]["MaximumConcurrency"]) == max(
        SQS_MINIMUM_MAXIMUM_CONCURRENCY, int(instances)
    )


def test_more_instances_than_calls_per_second_cannot_be_deployed(template: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="Unable to get mapping for CallsPerInstance::5::6"):
        function(template, ZegoCallsPerSecond="5", MaxConcurrentInstances="6")


def test_the_test_environment_cannot_be_given_more_than_its_5_calls_per_second(
    template: dict[str, Any],
) -> None:
    # ZEGO's test environment allows 5 calls per second: the template's Rules refuse more
    with pytest.raises(ValueError, match="TestEnvironmentBudget"):
        deploy(template, ZegoIsTest="true")
    with pytest.raises(ValueError, match="TestEnvironmentBudget"):
        deploy(template, ZegoIsTest="true", ZegoCallsPerSecond="6")
    environment = function(template, ZegoIsTest="true", ZegoCallsPerSecond="5")["Environment"]["Variables"]
    assert (environment["ZEGO_FLEET_CALLS_PER_SECOND"], environment["ZEGO_MAX_CALLS_PER_SECOND"]) == (
        "5",
        "2",
    )


# ----- the fleet's rate ledger -----------------------------------------------------------------


def test_the_fleet_shares_one_budget_through_a_ledger_table_by_default(template: dict[str, Any]) -> None:
    deployment = deploy(template)
    environment = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]
    table = deployment.resource("RateLedgerTable")

    # The function finds the table by name (Ref), and the fleet's budget beside its own share
    assert deployment.exists("RateLedgerTable")
    assert environment["ZEGO_RATE_LEDGER_TABLE"] == "<RateLedgerTable>"
    assert environment["ZEGO_FLEET_CALLS_PER_SECOND"] == "20"
    assert environment["ZEGO_MAX_CALLS_PER_SECOND"] == "10"
    assert environment["ZEGO_ARRIVAL_JITTER_MS"] == str(config.DEFAULT_ARRIVAL_JITTER_MS) == "40"
    # The shape the function's UpdateItem expects: pk (String), no sort key
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    # on demand (nothing when idle), encrypted with the stack's own key
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in properties
    assert properties["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": "<EncryptionKey>",
    }
    # last second's turns: nothing to keep when the stack goes, and no point-in-time recovery
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Delete"
    assert "PointInTimeRecoverySpecification" not in properties
    assert "TimeToLiveSpecification" not in properties  # one item per AppId, updated in place


def test_the_function_may_only_update_the_ledgers_budget_items(template: dict[str, Any]) -> None:
    deployment = deploy(template)
    statements = [
        statement
        for policy in deployment.resource("ResumeStreamsRole")["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "dynamodb" in str(statement["Action"])
    ]

    assert statements == [
        {
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": "<RateLedgerTable.Arn>",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["zego-rate#*"]}},
        }
    ]


@pytest.mark.parametrize(("total", "instances"), [("20", "2"), ("20", "3"), ("5", "2")])
def test_without_the_ledger_each_instance_paces_alone_at_its_static_share(
    template: dict[str, Any], total: str, instances: str
) -> None:
    deployment = deploy(
        template, FleetRateLedger="Disabled", ZegoCallsPerSecond=total, MaxConcurrentInstances=instances
    )
    environment = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]
    policies = [p["PolicyName"] for p in deployment.resource("ResumeStreamsRole")["Properties"]["Policies"]]
    shape = fleet_shape(deployment)

    # No table, no variable (unset means no ledger), no permission
    assert not deployment.exists("RateLedgerTable")
    assert "ZEGO_RATE_LEDGER_TABLE" not in environment
    assert "take-zego-turns" not in policies
    assert "RateLedgerTableName" not in [
        name for name, output in template["Outputs"].items() if "Condition" not in output
    ]
    # and the static split holds the fleet within the budget by itself
    assert not shape.rate_ledger
    assert (
        shape.max_concurrent_instances * shape.per_instance_calls_per_second <= shape.fleet_calls_per_second
    )
    assert shape.fleet_calls_per_second == int(total)


def test_instances_waiting_for_the_budget_are_capped_at_what_keeps_it_busy(template: dict[str, Any]) -> None:
    shape = fleet_shape(deploy(template))

    # By default: two instances (SQS's minimum) whose static shares add up to the whole budget,
    # so the two keep it busy even sized for their shares alone; a third could only wait for
    # turns, billed (docs/operations.md, "Rate limit and fleet shape")
    assert template["Parameters"]["FleetRateLedger"]["Default"] == "Enabled"
    assert shape.max_concurrent_instances == shape.sqs_maximum_concurrency == SQS_MINIMUM_MAXIMUM_CONCURRENCY
    assert (
        shape.per_instance_calls_per_second * shape.max_concurrent_instances == shape.fleet_calls_per_second
    )
    # the poller never asks for more invocations than may run
    for instances in range(2, ZEGO_RATE_LIMIT + 1):
        scaled = fleet_shape(deploy(template, MaxConcurrentInstances=str(instances)))
        assert scaled.sqs_maximum_concurrency == scaled.max_concurrent_instances == instances


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
    deployment = deploy(template)
    dead_letters = deployment.resource("DeadLetterQueue")["Properties"]
    properties = function(template)
    sqs = properties["Events"]["ResumeRequests"]["Properties"]
    queue = deployment.resource("ResumeQueue")["Properties"]

    # AWS's rule for SQS event sources (also enforced by .cfnlint/rules on every lint)
    assert queue["VisibilityTimeout"] >= 6 * properties["Timeout"] + sqs["MaximumBatchingWindowInSeconds"]
    # a dead letter SQS moves keeps the source's enqueue time: the DLQ must keep it longer, 14
    # days, whatever GiveUpAfterHours
    for hours in template["Parameters"]["GiveUpAfterHours"]["AllowedValues"]:
        retention = fleet_shape(deploy(template, GiveUpAfterHours=str(hours))).message_retention_seconds
        assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600 > retention
    # a dead letter is a source body plus attributes
    assert dead_letters["MaximumMessageSize"] == 1_048_576 > queue["MaximumMessageSize"] == 262_144
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# ----- riding out a ZEGO outage: one "give up after" parameter ---------------------------------

SQS_MAX_RETENTION_SECONDS = 14 * 24 * 3600
SQS_MAX_RECEIVE_COUNT = 1000
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600  # ChangeMessageVisibility's ceiling
GIVE_UP_HOURS = [1, 6, 12, 24, 48, 72, 168]


def test_give_up_after_is_one_parameter_in_hours_defaulting_to_a_day(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["GiveUpAfterHours"]

    assert parameter["Default"] == 24
    assert parameter["AllowedValues"] == GIVE_UP_HOURS
    assert set(template["Mappings"]["GiveUpAfter"]) == {str(hours) for hours in GIVE_UP_HOURS}
    assert "MaxReceiveCount" not in template["Parameters"], "maxReceiveCount now follows from the give-up age"
    shape = fleet_shape(deploy(template))
    assert (shape.give_up_after_hours, shape.decision_max_age_seconds) == (24, 86400)


@pytest.mark.parametrize("hours", GIVE_UP_HOURS)
def test_every_give_up_age_derives_the_cap_the_receives_and_the_retention_by_the_formula(
    template: dict[str, Any], hours: int
) -> None:
    # Given a deployment that gives up after `hours`
    deployment = deploy(template, GiveUpAfterHours=str(hours))
    environment = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]
    queue = deployment.resource("ResumeQueue")["Properties"]
    shape = fleet_shape(deployment)

    # Then the function and the queue read the same numbers
    assert int(environment["DECISION_MAX_AGE_SECONDS"]) == shape.decision_max_age_seconds
    assert int(environment["REDELIVERY_MAX_DELAY_SECONDS"]) == shape.redelivery_max_delay_seconds
    assert int(environment["MAX_RECEIVE_COUNT"]) == int(queue["RedrivePolicy"]["maxReceiveCount"])
    # and they are the documented formula (the comment above Mappings GiveUpAfter)
    age = hours * 3600
    cap = min(900, age // 12)
    most_receives = most_receives_before_give_up(age, cap)
    assert shape.decision_max_age_seconds == age
    assert shape.redelivery_max_delay_seconds == cap
    assert shape.max_receive_count == most_receives + max(5, -(-most_receives // 10))
    assert shape.message_retention_seconds == max(4 * 24 * 3600, age + 2 * 3600)


@pytest.mark.parametrize("hours", GIVE_UP_HOURS)
def test_the_age_rule_decides_before_sqs_and_before_retention(template: dict[str, Any], hours: int) -> None:
    shape = fleet_shape(deploy(template, GiveUpAfterHours=str(hours)))
    age, cap = shape.decision_max_age_seconds, shape.redelivery_max_delay_seconds

    # Every receive fails at once and is handed back for the shortest time the function may ask:
    # the receive on which the decision is older than the give-up age is one SQS still delivers
    receive, elapsed = 1, 0
    while elapsed <= age:
        elapsed += shape.redelivery_delay_seconds(receive)
        receive += 1
    assert receive <= shape.max_receive_count <= SQS_MAX_RECEIVE_COUNT
    # and no decision expires first: the last hand-back before the age rule, then one
    # invocation lost to a crash or timeout, still ends inside the retention period
    assert shape.message_retention_seconds > age + cap + shape.visibility_timeout_seconds
    assert shape.message_retention_seconds <= SQS_MAX_RETENTION_SECONDS
    # SQS accepts the cap as a visibility timeout, and a probe runs at least once within it
    assert cap <= SQS_MAX_VISIBILITY_SECONDS
    assert int(template["Parameters"]["OutageProbeSeconds"]["MaxValue"]) <= cap
    # what SQS redrives still has most of a week in the DLQ (it keeps its first enqueue time)
    assert SQS_MAX_RETENTION_SECONDS - shape.message_retention_seconds >= 6 * 24 * 3600


def test_the_outage_probe_is_a_parameter_set_on_the_function(template: dict[str, Any]) -> None:
    assert template["Parameters"]["OutageProbeSeconds"]["Default"] == 10
    environment = function(template, OutageProbeSeconds="30")["Environment"]["Variables"]
    assert environment["ZEGO_OUTAGE_PROBE_SECONDS"] == "30"
    assert function(template)["Environment"]["Variables"]["ZEGO_OUTAGE_PROBE_SECONDS"] == "10"


def test_an_outage_longer_than_the_threshold_raises_an_alarm_that_outlasts_the_gaps_between_reports(
    template: dict[str, Any],
) -> None:
    deployment = deploy(template, OutageAlarmSeconds="1200", MetricsNamespace="Moderation/Zego")
    alarm = deployment.resource("ZegoOutageAlarm")["Properties"]
    environment = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]

    # The metric the function emits every invocation, in its namespace and with its dimension
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Moderation/Zego", "ZegoOutageSeconds")
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]
    assert (alarm["Statistic"], alarm["ComparisonOperator"]) == ("Maximum", "GreaterThanOrEqualToThreshold")
    assert str(alarm["Threshold"]) == "1200"
    assert template["Parameters"]["OutageAlarmSeconds"]["Default"] == 900
    # During an outage decisions come back (and report) at most a redelivery cap apart: one
    # report anywhere in the window keeps the alarm raised
    window = alarm["Period"] * alarm["EvaluationPeriods"]
    longest_cap = max(
        fleet_shape(deploy(template, GiveUpAfterHours=str(hours))).redelivery_max_delay_seconds
        for hours in GIVE_UP_HOURS
    )
    assert window >= longest_cap
    assert alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"


# ----- who may lift a ban ----------------------------------------------------------------------

PRODUCERS = "arn:aws:iam::123456789012:role/appeals,arn:aws:iam::210987654321:role/rules-engine"
SCHEDULER_ROLE = "<SchedulerRole.Arn>"
RULE = "<ModerationEventsRule.Arn>"


def statements(deployment: Deployment, logical_id: str) -> dict[str, dict[str, Any]]:
    properties = deployment.resource(logical_id)["Properties"]
    document = properties.get("PolicyDocument") or properties.get("KeyPolicy")
    return {statement["Sid"]: statement for statement in document["Statement"]}


def test_the_producers_must_be_named_to_deploy(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ProducerPrincipalArns"]

    assert parameter["Type"] == "CommaDelimitedList"
    assert "Default" not in parameter
    deployment = Deployment(template, {"ZegoSecretName": "zego/resume-streams"})
    with pytest.raises(KeyError, match="ProducerPrincipalArns has no default"):
        deployment.resource("ResumeQueuePolicy")


def test_only_the_named_producers_the_scheduler_and_the_rule_may_send_decisions(
    template: dict[str, Any],
) -> None:
    deployment = deploy(template, ProducerPrincipalArns=PRODUCERS)
    policy = statements(deployment, "ResumeQueuePolicy")
    producers = PRODUCERS.split(",")

    assert deployment.resource("ResumeQueuePolicy")["Properties"]["Queues"] == ["<ResumeQueue>"]
    assert policy["ProducersSendDecisions"] == {
        "Sid": "ProducersSendDecisions",
        "Effect": "Allow",
        "Principal": {"AWS": producers},
        "Action": "sqs:SendMessage",
        "Resource": "<ResumeQueue.Arn>",
    }
    assert policy["ModerationRuleSendsDecisions"]["Condition"] == {"ArnEquals": {"aws:SourceArn": RULE}}
    # Everyone else is denied, whatever their own IAM policy says
    deny = policy["OnlyNamedSendersSendDecisions"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": [*producers, SCHEDULER_ROLE], "aws:SourceArn": RULE}
    }
    assert policy["TlsOnly"]["Effect"] == "Deny"
    # no statement allows anyone at all
    assert all(s["Principal"] != "*" for s in policy.values() if s["Effect"] == "Allow")


def test_only_the_failure_paths_may_write_dead_letters(template: dict[str, Any]) -> None:
    deployment = deploy(template)
    policy = statements(deployment, "DeadLetterQueuePolicy")
    redrive = deployment.resource("DeadLetterQueue")["Properties"]["RedriveAllowPolicy"]

    assert deployment.resource("DeadLetterQueuePolicy")["Properties"]["Queues"] == ["<DeadLetterQueue>"]
    # SQS's redrive from the resume queue, and from no other queue
    assert redrive == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{STACK_NAME}-resume-requests"],
    }
    assert deployment.resource("ResumeQueue")["Properties"]["QueueName"] == f"{STACK_NAME}-resume-requests"
    # the rule's DeadLetterConfig
    assert policy["ModerationRuleDeadLetters"]["Principal"] == {"Service": "events.amazonaws.com"}
    assert policy["ModerationRuleDeadLetters"]["Condition"] == {"ArnEquals": {"aws:SourceArn": RULE}}
    # the function (its dead letters and its OnFailure destination) and the schedule's role
    deny = policy["OnlyFailurePathsWriteDeadLetters"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Condition"] == {
        "ArnNotEquals": {
            "aws:PrincipalArn": ["<ResumeStreamsRole.Arn>", SCHEDULER_ROLE],
            "aws:SourceArn": RULE,
        }
    }
    assert [s["Sid"] for s in policy.values() if s["Effect"] == "Allow"] == ["ModerationRuleDeadLetters"]
    assert function(template)["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == (
        "<DeadLetterQueue.Arn>"
    )


def test_the_stack_owns_the_bus_and_only_the_producers_may_put_events_on_it(template: dict[str, Any]) -> None:
    deployment = deploy(template, ProducerPrincipalArns=PRODUCERS)
    producers = PRODUCERS.split(",")
    allow = deployment.resource("ProducersPutModerationEvents")["Properties"]
    deny = deployment.resource("OnlyNamedProducersPutModerationEvents")["Properties"]

    assert template["Parameters"]["ExistingEventBusName"]["Default"] == ""
    assert deployment.exists("ModerationEventBus")
    assert deployment.resource("ModerationEventBus")["Properties"]["Name"] == f"{STACK_NAME}-moderation"
    assert allow["EventBusName"] == deny["EventBusName"] == "<ModerationEventBus>"
    assert allow["Statement"] == {
        "Effect": "Allow",
        "Principal": {"AWS": producers},
        "Action": "events:PutEvents",
        "Resource": "<ModerationEventBus.Arn>",
        "Condition": {
            "ForAllValues:StringEquals": {"events:source": ["moderation.appeals", "moderation.rules"]}
        },
    }
    # nobody else may put any event on the stack's own bus
    assert deny["Statement"] == {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Resource": "<ModerationEventBus.Arn>",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": producers}},
    }
    assert allow["StatementId"] != deny["StatementId"]


def test_on_an_existing_bus_only_the_producers_may_put_moderation_events(template: dict[str, Any]) -> None:
    deployment = deploy(template, ProducerPrincipalArns=PRODUCERS, ExistingEventBusName="default")
    deny = deployment.resource("OnlyNamedProducersPutModerationEvents")["Properties"]

    assert not deployment.exists("ModerationEventBus")
    assert deny["EventBusName"] == "default"
    assert deny["Statement"]["Resource"] == f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/default"
    # other applications' events on a shared bus are left alone
    assert deny["Statement"]["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": PRODUCERS.split(",")},
        "ForAnyValue:StringEquals": {"events:source": ["moderation.appeals", "moderation.rules"]},
    }


def test_the_producers_may_encrypt_requests_through_sqs_only(template: dict[str, Any]) -> None:
    key = statements(deploy(template, ProducerPrincipalArns=PRODUCERS), "EncryptionKey")

    assert key["ProducersEncryptRequestsThroughSqs"] == {
        "Sid": "ProducersEncryptRequestsThroughSqs",
        "Effect": "Allow",
        "Principal": {"AWS": PRODUCERS.split(",")},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}},
    }


def test_only_this_accounts_schedules_may_assume_the_scheduler_role(template: dict[str, Any]) -> None:
    role = deploy(template).resource("SchedulerRole")["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/*"},
    }


# ----- EventBridge and the schedule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "bus", "rule_path"),
    [
        ("", "<ModerationEventBus>", f"{STACK_NAME}-moderation/"),
        ("default", "default", ""),
        ("moderation", "moderation", "moderation/"),
    ],
)
def test_moderation_events_go_whole_to_the_queue_with_retries_and_a_dlq(
    template: dict[str, Any], existing: str, bus: str, rule_path: str
) -> None:
    deployment = deploy(template, ExistingEventBusName=existing)
    rule = deployment.resource("ModerationEventsRule")["Properties"]
    (target,) = rule["Targets"]

    assert rule["EventBusName"] == bus
    # only events from the producers' accounts (EventBridge sets `account`: it cannot be forged)
    assert rule["EventPattern"] == {
        "account": [ACCOUNT_ID],
        "source": ["moderation.appeals", "moderation.rules"],
        "detail-type": ["StreamBanLifted"],
    }
    assert target["Arn"] == "<ResumeQueue.Arn>"
    assert not {"Input", "InputPath", "InputTransformer"} & set(target), "the body must be the whole event"
    assert target["DeadLetterConfig"] == {"Arn": "<DeadLetterQueue.Arn>"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0

    # EventBridge may write to the queues (and through the key) for this rule only. The key
    # policy cannot !GetAtt the rule (a cycle), so its spelled-out ARN must be the rule's.
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_path}{rule['Name']}"
    key_policy = deployment.resource("EncryptionKey")["Properties"]["KeyPolicy"]
    (events_on_key,) = [
        s for s in key_policy["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert events_on_key["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    for queue_policy in ("ResumeQueuePolicy", "DeadLetterQueuePolicy"):
        (events_on_queue,) = [
            s
            for s in statements(deployment, queue_policy).values()
            if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
        ]
        assert events_on_queue["Action"] == "sqs:SendMessage"
        assert events_on_queue["Condition"] == {"ArnEquals": {"aws:SourceArn": RULE}}


def test_the_rule_matches_the_named_producer_accounts(template: dict[str, Any]) -> None:
    deployment = deploy(template, ProducerAccountIds="210987654321,123456789012")
    rule = deployment.resource("ModerationEventsRule")["Properties"]

    assert rule["EventPattern"]["account"] == ["210987654321", "123456789012"]


def test_the_example_schedule_is_off_by_default_and_sends_a_valid_request(template: dict[str, Any]) -> None:
    schedule = function(template)["Events"]["ExampleSchedule"]

    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["State"] == "DISABLED"
    assert schedule["Properties"]["Name"] == f"{STACK_NAME}-example-resume"  # unique per account
    assert json.loads(schedule["Properties"]["Input"])["streamIds"] == ["example-stream"]
    assert schedule["Properties"]["DeadLetterConfig"] == {"Arn": "<DeadLetterQueue.Arn>"}


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


# ----- least privilege -------------------------------------------------------------------------


@pytest.mark.parametrize("tracing", ["PassThrough", "Active"])
def test_no_iam_statement_grants_on_every_resource_but_x_rays(template: dict[str, Any], tracing: str) -> None:
    deployment = deploy(template, Tracing=tracing)
    role_statements = [
        statement
        for role in ("ResumeStreamsRole", "SchedulerRole")
        for policy in deployment.resource(role)["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]

    on_everything = [s for s in role_statements if "*" in str(s["Resource"])]

    # X-Ray accepts no other resource, and its statement exists only when tracing is on
    expected = [["xray:PutTraceSegments", "xray:PutTelemetryRecords"]] if tracing == "Active" else []
    assert [s["Action"] for s in on_everything] == expected
    environment = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_TRACE_DISABLED"] == ("false" if tracing == "Active" else "true")


def grants(deployment: Deployment, role: str) -> set[tuple[str, str]]:
    return {
        (action, resource)
        for policy in deployment.resource(role)["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        for resource in (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
    }


def test_the_function_may_touch_its_own_secret_queues_key_and_ledger_only(template: dict[str, Any]) -> None:
    deployment = deploy(template, ZegoSecretName="zego/prod")

    assert grants(deployment, "ResumeStreamsRole") == {
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
        # a decision handed back for a transient reason waits its redelivery delay
        ("sqs:ChangeMessageVisibility", "<ResumeQueue.Arn>"),
        ("sqs:GetQueueUrl", "<ResumeQueue.Arn>"),  # the event names the queue by ARN
        ("sqs:SendMessage", "<DeadLetterQueue.Arn>"),
        ("kms:Decrypt", "<EncryptionKey.Arn>"),
        ("kms:GenerateDataKey", "<EncryptionKey.Arn>"),
        ("dynamodb:UpdateItem", "<RateLedgerTable.Arn>"),
    }


def test_the_scheduler_may_invoke_the_function_or_queue_a_request_and_dead_letter(
    template: dict[str, Any],
) -> None:
    assert grants(deploy(template), "SchedulerRole") == {
        ("lambda:InvokeFunction", "<ResumeStreamsFunction.Arn>"),
        ("sqs:SendMessage", "<ResumeQueue.Arn>"),
        ("sqs:SendMessage", "<DeadLetterQueue.Arn>"),
        ("kms:Decrypt", "<EncryptionKey.Arn>"),
        ("kms:GenerateDataKey", "<EncryptionKey.Arn>"),
    }


def test_a_customer_key_on_the_secret_is_usable_only_through_secrets_manager(
    template: dict[str, Any],
) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    deployment = deploy(template, ZegoSecretName="zego/prod", ZegoSecretKmsKeyArn=key)

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
    deployment = deploy(template)
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
    body = deploy(template).resource("Dashboard")["Properties"]["DashboardBody"]

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
        # riding out an outage
        "ZegoOutageSeconds",
        "ZegoProbes",
        "ZegoRetriesRefused",
        "RedeliveryDelaySeconds",
        # the fleet's shared budget
        "RateSlotsMissed",
        "RateLedgerUnavailable",
    }
    assert all(
        dimensions in {("service",), ("ErrorCode", "service")}
        for _, dimensions in dashboard_metrics(template)
    )


def test_the_dashboard_marks_the_outage_alarm_and_the_redelivery_cap(template: dict[str, Any]) -> None:
    deployment = deploy(template, OutageAlarmSeconds="600", GiveUpAfterHours="1")
    body = json.loads(deployment.resource("Dashboard")["Properties"]["DashboardBody"])
    marks = {
        widget["properties"]["metrics"][0][1]: widget["properties"]["annotations"]["horizontal"][0]["value"]
        for widget in body["widgets"]
        if "annotations" in widget["properties"]
    }

    assert marks == {"ZegoOutageSeconds": 600, "RedeliveryDelaySeconds": 300}


def alarms(deployment: Deployment) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (properties["Namespace"], properties["MetricName"]): properties
        for logical_id, resource in deployment.template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and deployment.exists(logical_id)
        for properties in [deployment.resource(logical_id)["Properties"]]
    }


def test_alarms_watch_failures_outages_and_lost_deliveries(template: dict[str, Any]) -> None:
    found = alarms(deploy(template))

    assert set(found) == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("ZegoStreamModeration", "ZegoOutageSeconds"),
        # deliveries that can be lost on the way to the DLQ
        ("AWS/Lambda", "DestinationDeliveryFailures"),
        ("AWS/Lambda", "AsyncEventsDropped"),
        ("AWS/Events", "FailedInvocations"),
    }
    for key in [("AWS/Lambda", "DestinationDeliveryFailures"), ("AWS/Lambda", "AsyncEventsDropped")]:
        assert found[key]["Dimensions"] == [{"Name": "FunctionName", "Value": "<ResumeStreamsFunction>"}]
        assert (found[key]["Statistic"], found[key]["Threshold"]) == ("Sum", 0)
        assert found[key]["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize(
    ("existing", "dimensions"),
    [
        (
            "",
            [
                {"Name": "EventBusName", "Value": "<ModerationEventBus>"},
                {"Name": "RuleName", "Value": f"{STACK_NAME}-ban-lifted"},
            ],
        ),
        ("default", [{"Name": "RuleName", "Value": "<ModerationEventsRule>"}]),
    ],
)
def test_the_rules_failed_deliveries_alarm_uses_the_buss_dimensions(
    template: dict[str, Any], existing: str, dimensions: list[dict[str, str]]
) -> None:
    # Rules on the default bus report by RuleName alone, rules on other buses by EventBusName too
    alarm = alarms(deploy(template, ExistingEventBusName=existing))[("AWS/Events", "FailedInvocations")]

    assert alarm["Dimensions"] == dimensions
    assert (
        deploy(template).resource("ModerationEventsRule")["Properties"]["Name"] == f"{STACK_NAME}-ban-lifted"
    )


def test_outputs_name_what_producers_and_operators_need(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= {
        "ResumeQueueUrl",
        "ResumeQueueArn",
        "DeadLetterQueueUrl",
        "FunctionArn",
        "EventBusName",
        "SchedulerRoleArn",
        "RateLedgerTableName",
    }
    assert deploy(template).resolve(template["Outputs"]["EventBusName"]["Value"]) == "<ModerationEventBus>"


# ----- sam local invoke ------------------------------------------------------------------------


def test_the_env_vars_file_sets_only_variables_the_function_declares(template: dict[str, Any]) -> None:
    env_vars = json.loads((ROOT / "locals.json").read_text())
    declared = template["Resources"][FUNCTION_ID]["Properties"]["Environment"]["Variables"]

    # `sam local invoke --env-vars` only overrides variables the template declares
    assert set(env_vars) == {FUNCTION_ID}
    assert set(env_vars[FUNCTION_ID]) <= set(declared)
    assert {"ZEGO_SECRET_ID", "DEAD_LETTER_QUEUE_URL", "ZEGO_API_BASE_URL"} <= set(env_vars[FUNCTION_ID])
    assert all(isinstance(value, str) for value in env_vars[FUNCTION_ID].values())


def test_the_env_vars_file_keeps_the_templates_fleet_shape_and_no_ledger(template: dict[str, Any]) -> None:
    env_vars = json.loads((ROOT / "locals.json").read_text())[FUNCTION_ID]
    defaults = {
        name: str(value)
        for name, value in deploy(template)
        .resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]
        .items()
    }
    shape_variables = {
        "ZEGO_FLEET_CALLS_PER_SECOND",
        "ZEGO_MAX_CALLS_PER_SECOND",
        "MAX_RECEIVE_COUNT",
        "DECISION_MAX_AGE_SECONDS",
        "REDELIVERY_MAX_DELAY_SECONDS",
    }

    # What it sets of the fleet's shape is the template's default, so a local run behaves as
    # deployed; and no ledger (empty = unset): a local run must not write to a real table
    for name in shape_variables & set(env_vars):
        assert env_vars[name] == defaults[name], name
    assert env_vars["ZEGO_RATE_LEDGER_TABLE"] == ""


def test_samconfig_deploys_the_template_with_the_capabilities_it_needs() -> None:
    import tomllib

    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    deploy_parameters = samconfig["default"]["deploy"]["parameters"]

    assert "CAPABILITY_IAM" in deploy_parameters["capabilities"]
    assert samconfig["default"]["local_invoke"]["parameters"]["env_vars"] == "locals.json"
    assert Path(ROOT / samconfig["default"]["local_invoke"]["parameters"]["env_vars"]).is_file()
