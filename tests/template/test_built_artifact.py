"""The artifact `sam build` makes, run as Lambda runs it: with only the built function, the built
layer and the runtime's boto3 importable (`python3.12 -I -S`), the template's environment, and
real HTTP to moto server and the ZEGO emulator on loopback. A no-Docker `sam local invoke`.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devkit.template import REQUIRED_PARAMETERS, Deployment, fleet_shape, load_template
from devkit.toolchain import Build, tree_size
from zegosim.aws import MotoServer, Stack, create_stack, drain
from zegosim.zego import Fault, ZegoEmulator

from .conftest import EVENTS, FUNCTION_ID, report, run
from .test_template import dashboard_metrics

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket, pytest.mark.timeout(600)]

DRIVER = Path(__file__).with_name("lambda_driver.py")
APP_ID = 1234567890
SIZE_LIMIT_BYTES = 10 * 1024 * 1024  # unzipped, function + layer
PEAK_RSS_KIB: list[int] = []  # each run's, for the session summary


@dataclass(frozen=True)
class Expected:
    answer: dict[str, Any]  # the answer, or the part of it that matters
    resumed: set[str]
    dead_letters: int = 0


NOTHING_FAILED = {"batchItemFailures": []}
RESUMED = {"status": "resumed", "deadLettered": []}

EXPECTED = {
    "direct-request.json": Expected(RESUMED, {"stream-j", "stream-k"}),
    "eventbridge-event.json": Expected(RESUMED, {"stream-g", "stream-h", "stream-i"}),
    "sqs-batch.json": Expected(NOTHING_FAILED, {"stream-a", "stream-b", "stream-c"}),
    "sqs-eventbridge-envelopes.json": Expected(NOTHING_FAILED, {"stream-d", "stream-e", "stream-f"}),
    # not JSON, a bad stream id, no stream ids: dead-lettered at once, not retried
    "sqs-mixed-batch.json": Expected(NOTHING_FAILED, {"stream-l", "stream-m", "stream-n"}, dead_letters=3),
}


@dataclass
class Invocation:
    result: dict[str, Any]
    stdout: str
    stderr: str
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def emf_metrics(self) -> set[tuple[str, tuple[str, ...]]]:
        """(metric, dimension names) of every EMF line the function printed."""
        found = set()
        for line in self.stdout.splitlines():
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                for dimensions in directive["Dimensions"]:
                    for metric in directive["Metrics"]:
                        found.add((metric["Name"], tuple(sorted(dimensions))))
        return found


@pytest.fixture(scope="module")
def built_template(build: Build) -> dict[str, Any]:
    return load_template(build.template)


@dataclass
class Lambda:
    """The built function, deployed on loopback: its stack, ZEGO, and how to invoke it."""

    build: Build
    runtime_boto3: Path
    python312: Path
    template: dict[str, Any]
    stack: Stack
    zego: ZegoEmulator
    aws_environment: dict[str, str]
    rate_ledger_table: str

    def environment(self) -> dict[str, str]:
        """The function's variables as the template sets them (at its defaults), the resources'
        values from this stack, and the AWS variables that point boto3 at moto."""
        deployment = Deployment(self.template, {**REQUIRED_PARAMETERS, "ZegoSecretName": "placeholder"})
        properties = deployment.resource(FUNCTION_ID)["Properties"]
        declared = properties["Environment"]["Variables"]
        from_stack = {
            **self.stack.function_environment(self.zego.base_url),
            "ZEGO_RATE_LEDGER_TABLE": self.rate_ledger_table,
        }
        assert set(from_stack) <= set(declared), "the stack sets a variable the template does not declare"
        return {
            **{name: str(value) for name, value in declared.items()},
            **from_stack,
            **self.aws_environment,
            "DRIVER_TIMEOUT_SECONDS": str(properties["Timeout"]),
            "DRIVER_MEMORY_MB": str(properties["MemorySize"]),
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_ID,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LANG": "C.UTF-8",
        }

    def invoke(self, event_file: Path, tmp_path: Path) -> Invocation:
        code_dirs = [self.build.function_dir, self.build.layer_dir / "python", self.runtime_boto3]
        result_file = tmp_path / "result.json"
        completed = run(
            [
                str(self.python312),
                "-I",
                "-S",
                "-B",
                str(DRIVER),
                str(event_file),
                str(result_file),
                *map(str, code_dirs),
            ],
            env=self.environment(),
            timeout=120,
        )
        assert result_file.exists(), f"the driver did not finish:\n{completed.stdout}\n{completed.stderr}"
        result = json.loads(result_file.read_text())
        # Lambda's sys.path: the function, the layer, the runtime's packages, the standard library
        assert result["isolated"]
        assert result["sysPath"][:3] == [str(path) for path in code_dirs]
        for entry in result["sysPath"][3:]:
            assert entry.startswith(result["basePrefix"]), entry
            assert "site-packages" not in entry, entry
        return Invocation(
            result=result,
            stdout=completed.stdout,
            stderr=completed.stderr,
            dead_letters=drain(self.stack.dead_letter_queue_url, self.aws_environment),
        )


@pytest.fixture
def deployed(
    build: Build,
    built_template: dict[str, Any],
    runtime_boto3: Path,
    python312: Path,
    moto: MotoServer,
) -> Iterator[Lambda]:
    server_secret = secrets.token_hex(16)
    aws_environment = moto.environment()
    shape = fleet_shape(Deployment(built_template, REQUIRED_PARAMETERS))
    stack = create_stack(
        app_id=APP_ID,
        server_secret=server_secret,
        environment=aws_environment,
        max_receive_count=shape.max_receive_count,
        visibility_timeout=shape.visibility_timeout_seconds,
    )
    table = create_rate_ledger(built_template, aws_environment)
    with ZegoEmulator(APP_ID, server_secret) as zego:
        yield Lambda(build, runtime_boto3, python312, built_template, stack, zego, aws_environment, table)


def create_rate_ledger(template: dict[str, Any], environment: dict[str, str]) -> str:
    """The rate ledger table in moto, with the key schema, attributes and billing the template
    gives it (a fresh name per test: the ledger's items outlive an invocation)."""
    properties = Deployment(template, REQUIRED_PARAMETERS).resource("RateLedgerTable")["Properties"]
    name = f"zego-rate-ledger-{secrets.token_hex(4)}"
    client = dynamodb(environment)
    client.create_table(
        TableName=name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
    )
    return name


def dynamodb(environment: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name=environment["AWS_REGION"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
    )


def test_the_built_function_and_layer_stay_under_10_mb_unzipped(build: Build) -> None:
    function_bytes, layer_bytes = tree_size(build.function_dir), tree_size(build.layer_dir)
    total = function_bytes + layer_bytes

    report(
        "size",
        f"built artifact: function {function_bytes:,} B + layer {layer_bytes:,} B = {total:,} B "
        f"({total / 1024 / 1024:.2f} MiB unzipped; limit 10 MiB)",
    )
    print(f"built function + layer: {total:,} bytes unzipped", file=sys.stderr)
    assert total < SIZE_LIMIT_BYTES
    # boto3 is the runtime's: bundling it would multiply the size
    assert not (build.layer_dir / "python" / "boto3").exists()
    assert not (build.layer_dir / "python" / "botocore").exists()


def test_every_canonical_event_has_an_expectation() -> None:
    assert {path.name for path in EVENTS.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_built_artifact_handles_each_canonical_event(deployed: Lambda, tmp_path: Path, name: str) -> None:
    expected = EXPECTED[name]

    # When the built handler gets the event
    invocation = deployed.invoke(EVENTS / name, tmp_path)

    # Then it answers as the contract says, ZEGO resumed the streams, and the DLQ holds the bad part
    assert "error" not in invocation.result, f"{invocation.result['error']}\n{invocation.stderr}"
    answer = invocation.result["answer"]
    assert {key: answer[key] for key in expected.answer} == expected.answer, answer
    assert deployed.zego.resumed_stream_ids() == expected.resumed
    assert len(invocation.dead_letters) == expected.dead_letters, invocation.dead_letters
    for letter in invocation.dead_letters:
        assert letter["attributes"]["ErrorCode"] == "InvalidRequest"
    # and every package came from where Lambda would take it
    function_dir, layer_dir, runtime_dir = (str(path) for path in invocation.result["sysPath"][:3])
    origins = invocation.result["origins"]
    assert origins["app"] == origins["zego_resume"] == function_dir
    assert origins["aws_lambda_powertools"] == origins["requests"] == origins["urllib3"] == layer_dir
    if "boto3" in origins:
        assert origins["boto3"] == origins["botocore"] == runtime_dir
    PEAK_RSS_KIB.append(invocation.result["peakRssKiB"])
    report("memory", f"built artifact: peak RSS {max(PEAK_RSS_KIB) / 1024:.0f} MiB (MemorySize: 256 MB)")


def test_the_built_artifact_emits_the_metrics_the_dashboard_reads(deployed: Lambda, tmp_path: Path) -> None:
    # Given ZEGO fails the first attempt with a transient code, then succeeds
    deployed.zego.inject(Fault.of_code(30003))

    # When the built handler resumes a direct request
    invocation = deployed.invoke(EVENTS / "direct-request.json", tmp_path)

    # Then it emits, with the dimensions the dashboard uses, every metric this run had reason to
    assert invocation.result["answer"]["status"] == "resumed"
    emitted = invocation.emf_metrics()
    emitted_names = {name for name, _ in emitted}
    assert {"StreamIdsResumed", "ZegoCalls", "ZegoRetries", "ZegoErrors", "DeadLettered"} <= emitted_names
    for metric in dashboard_metrics(deployed.template):
        if metric[0] in emitted_names:
            assert metric in emitted, f"the dashboard reads {metric}; the function emits {sorted(emitted)}"


def test_the_ledger_table_takes_the_functions_conditional_updates_of_one_item_per_app_id(
    deployed: Lambda,
) -> None:
    # Given the ledger table as the built template defines it, and the function's access (one
    # conditional UpdateItem on "zego-rate#<AppId>", returning the item either way)
    client = dynamodb(deployed.aws_environment)
    key = {"pk": {"S": f"zego-rate#{APP_ID}"}}

    def take_turn(limit: int) -> Any:
        return client.update_item(
            TableName=deployed.rate_ledger_table,
            Key=key,
            UpdateExpression="SET turns = if_not_exists(turns, :zero) + :one",
            ConditionExpression="attribute_not_exists(turns) OR turns < :limit",
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":limit": {"N": str(limit)}},
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    # When the fleet takes the budget's turns, and one more
    answers = [take_turn(limit=2)["Attributes"]["turns"]["N"] for _ in range(2)]
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as refused:
        take_turn(limit=2)

    # Then the key schema fits (a sort key, or another name, would be refused as a schema
    # mismatch), each update returns the item, and the refusal carries the item as it stands
    assert answers == ["1", "2"]
    assert refused.value.response["Item"]["turns"] == {"N": "2"}
    assert deployed.environment()["ZEGO_RATE_LEDGER_TABLE"] == deployed.rate_ledger_table
