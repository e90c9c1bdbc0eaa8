"""The artifact `sam build` makes, run as Lambda runs it: with only the built function, the built
layer and the runtime's boto3 importable (`python3.12 -I -S`), no bytecode written (`-B`: Lambda's
/var/task and /opt are read-only), the template's environment, and real HTTP to moto server and
the ZEGO emulator on loopback. A no-Docker `sam local invoke`.

And what the build promises (docs/build.md): bytecode for every module it ships, used as shipped
(nothing of ours or the layer's is compiled at import); a layer pruned to what runs, which loads
the same modules as the whole install; the locked versions; under 10 MB unzipped.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devkit import toolchain
from devkit.template import REQUIRED_PARAMETERS, Deployment, fleet_shape, load_template
from devkit.toolchain import Build, package_sizes, tree_size
from zegosim.aws import MotoServer, Stack, create_stack, drain
from zegosim.zego import Fault, ZegoEmulator

from .conftest import EVENTS, FUNCTION_ID, report, run
from .test_template import dashboard_metrics

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket, pytest.mark.timeout(600)]

DRIVER = Path(__file__).with_name("lambda_driver.py")
PRUNE = toolchain.LAYER_SOURCE / "prune.py"
ROOTS = toolchain.LAYER_SOURCE / "roots.txt"
FUNCTION_SOURCE = toolchain.ROOT / "functions" / "resume_streams"
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

    def loaded_from(self, directory: Path) -> dict[str, dict[str, str]]:
        """The modules this run imported from `directory`: their file and the .pyc they name."""
        prefix = f"{directory}/"
        loaded: dict[str, dict[str, str]] = self.result["loaded"]
        return {name: module for name, module in loaded.items() if module["file"].startswith(prefix)}

    def compiled_in(self, *directories: Path) -> list[str]:
        """The sources under `directories` that the import system had to compile this run."""
        prefixes = tuple(f"{directory}/" for directory in directories)
        return [path for path in self.result["compiledFromSource"] if path.startswith(prefixes)]

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

    def shipped(self) -> tuple[Path, Path]:
        """What the build ships: the function's directory and the layer's python/."""
        return self.build.function_dir, self.build.layer_dir / "python"

    def invoke(self, event_file: Path, tmp_path: Path, code: Sequence[Path] | None = None) -> Invocation:
        """Run the function once on `event_file`: the built function and layer, or `code` (a
        function directory and a layer's python/) in their place."""
        code_dirs = [*(code or self.shipped()), self.runtime_boto3]
        result_file = tmp_path / f"result-{secrets.token_hex(4)}.json"
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
    layer = package_sizes(build.layer_dir / "python")
    largest = ", ".join(f"{name} {size / 1000:,.0f} kB" for name, size in list(layer.items())[:6])

    report(
        "size",
        f"built artifact: function {function_bytes:,} B + layer {layer_bytes:,} B = {total:,} B "
        f"({total / 1024 / 1024:.2f} MiB unzipped, bytecode in; limit 10 MiB); layer: {largest}",
    )
    print(f"built function + layer: {total:,} bytes unzipped", file=sys.stderr)
    assert total < SIZE_LIMIT_BYTES
    # boto3 is the runtime's: bundling it would multiply the size
    assert not (build.layer_dir / "python" / "boto3").exists()
    assert not (build.layer_dir / "python" / "botocore").exists()


def test_the_function_ships_its_code_and_nothing_else(build: Build) -> None:
    sources = {path.relative_to(FUNCTION_SOURCE) for path in FUNCTION_SOURCE.rglob("*.py")}
    shipped = {path.relative_to(build.function_dir) for path in build.function_dir.rglob("*.py")}
    assert shipped == sources
    others = {
        path.relative_to(build.function_dir)
        for path in build.function_dir.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    }
    assert not others, f"the function ships more than its code: {sorted(map(str, others))}"


def test_every_shipped_module_has_bytecode_valid_whatever_its_mtime(build: Build, python312: Path) -> None:
    # Lambda cannot write bytecode in /var/task or /opt, so it must come with the build: for
    # each source, a .pyc for this python3.12 (which compiled it: the same magic number as
    # Lambda's), hash-based and unchecked (a zip's mtimes cannot make it stale), made from
    # exactly this source.
    assert _magic_number(python312) == importlib.util.MAGIC_NUMBER, "the tests run another Python"
    sources = [*build.function_dir.rglob("*.py"), *(build.layer_dir / "python").rglob("*.py")]
    problems = {}
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        if not pyc.exists():
            problems[source] = "no .pyc"
            continue
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != importlib.util.MAGIC_NUMBER:
            problems[source] = "another Python's magic number"
        elif flags != 0b01:  # hash-based (bit 0), source not checked (bit 1 clear)
            problems[source] = f"flags {flags:#04b}, not unchecked-hash"
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            problems[source] = "compiled from another source"
    assert not problems, problems
    stray = [
        pyc
        for pyc in [*build.function_dir.rglob("*.pyc"), *build.layer_dir.rglob("*.pyc")]
        if not pyc.name.endswith(".cpython-312.pyc") or pyc.parent.name != "__pycache__"
    ]
    assert not stray, f"bytecode no python3.12 would read: {stray}"
    report("bytecode", f"built artifact: {len(sources)} modules, each with its unchecked-hash .pyc")


def test_the_layer_holds_exactly_the_locked_versions_for_the_templates_architecture(
    build: Build, built_template: dict[str, Any]
) -> None:
    locked = toolchain.locked_versions()
    layer = build.layer_dir / "python"
    shipped = {}
    for metadata in layer.glob("*.dist-info/METADATA"):
        fields = dict(re.findall(r"^(Name|Version): (.+)$", metadata.read_text(), flags=re.MULTILINE))
        shipped[toolchain.normalise(fields["Name"])] = fields["Version"]
    assert shipped == locked
    # requirements.txt (for humans) and the lock agree
    for line in (toolchain.LAYER_SOURCE / "requirements.txt").read_text().splitlines():
        pin = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip())
        if pin:
            assert locked[toolchain.normalise(pin.group(1))] == pin.group(2), line
    # every pin carries hashes, so the build's pip --require-hashes checks every file
    entries = re.split(r"\n(?=[A-Za-z0-9])", toolchain.LOCK.read_text())
    assert all("--hash=sha256:" in entry for entry in entries if re.match(r"[A-Za-z0-9].*==", entry))
    # compiled modules for the function's architecture
    architecture = built_template["Resources"]["DependenciesLayer"]["Properties"]["CompatibleArchitectures"]
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture[0]]
    extensions = list(layer.rglob("*.so"))
    assert extensions, "charset_normalizer's compiled modules are missing"
    assert all(path.name.endswith(f"-{machine}-linux-gnu.so") for path in extensions), extensions


def _magic_number(python: Path) -> bytes:
    completed = run(
        [str(python), "-I", "-c", "import importlib.util as u, sys; sys.stdout.write(u.MAGIC_NUMBER.hex())"]
    )
    return bytes.fromhex(completed.stdout)


def _prune_module() -> ModuleType:
    """layers/dependencies/prune.py, the layer's own pruner (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("layer_prune", PRUNE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_layer_keeps_every_module_the_function_or_botocore_can_import(
    build: Build, full_layer: Path, runtime_boto3: Path
) -> None:
    # Read from the code, not from roots.txt: every import statement the function's modules can
    # run, followed through the runtime's botocore and the whole layer. Each module it reaches
    # in the whole layer must be in the built one, unless roots.txt cuts it (next test).
    prune = _prune_module()
    index = {
        **prune.module_index(runtime_boto3),
        **prune.module_index(full_layer),
        **prune.module_index(FUNCTION_SOURCE),
    }
    own = [name for name, path in index.items() if path.is_relative_to(FUNCTION_SOURCE)]
    declared = prune.Roots.read(ROOTS)
    everything = prune.Roots(modules=own, reviewed=set(index), cut=declared.cut)
    reachable = prune.closure(everything, index)
    in_layer = {name for name in reachable if index[name].is_relative_to(full_layer)}
    built = set(prune.module_index(build.layer_dir / "python"))

    assert {"requests", "urllib3.connectionpool", "aws_lambda_powertools.metrics"} <= in_layer
    assert in_layer - built == set()


def test_what_the_layer_cuts_cannot_be_imported_from_the_whole_install_either(
    full_layer: Path, runtime_boto3: Path, python312: Path
) -> None:
    cut = _prune_module().Roots.read(ROOTS).cut
    assert cut
    for module in sorted(cut):
        code = (
            f"import sys; sys.path[:0] = [{str(full_layer)!r}, {str(runtime_boto3)!r}]\n"
            "import importlib.util\n"
            f"assert importlib.util.find_spec({module!r}) is not None, 'not in the whole install'\n"
            "try:\n"
            f"    import {module}\n"
            "except ImportError as error:\n"
            "    print('ImportError', error)\n"
        )
        completed = run([str(python312), "-I", "-S", "-B", "-c", code], timeout=60)
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.startswith("ImportError"), f"{module} imports: the layer must keep it"


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
    # from the bytecode the build shipped: nothing of ours or the layer's compiled at import
    assert invocation.compiled_in(*deployed.shipped()) == []
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
    assert invocation.compiled_in(*deployed.shipped()) == []
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


def _without_bytecode(directory: Path, copy: Path) -> Path:
    shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


BUSY_EVENT = EVENTS / "sqs-mixed-batch.json"  # SQS, dead letters, Secrets Manager and ZEGO


def test_the_built_artifact_runs_its_shipped_bytecode_and_would_compile_everything_without_it(
    deployed: Lambda, tmp_path: Path
) -> None:
    # Given a run that takes most paths (dead letters, a retry, the per-code error metric)
    function_dir, layer_dir = deployed.shipped()
    deployed.zego.inject(Fault.of_code(30003))
    shipped = deployed.invoke(BUSY_EVENT, tmp_path)
    # and the same run on a copy of the build with its bytecode deleted
    deployed.zego.reset()
    deployed.zego.inject(Fault.of_code(30003))
    bare_function = _without_bytecode(function_dir, tmp_path / "bare" / "function")
    bare_layer = _without_bytecode(layer_dir, tmp_path / "bare" / "python")
    bare = deployed.invoke(BUSY_EVENT, tmp_path, code=[bare_function, bare_layer])

    # Both answered alike
    for invocation in (shipped, bare):
        assert "error" not in invocation.result, invocation.stderr
        assert invocation.result["answer"] == {"batchItemFailures": []}

    # Without bytecode, every module imported from the artifact was compiled, ours, requests,
    # urllib3 and Powertools among them: the probe sees compilation when there is some. (It
    # sees more: a module whose own imports then fail, like urllib3.contrib.socks without PySocks.)
    loaded_bare = {**bare.loaded_from(bare_function), **bare.loaded_from(bare_layer)}
    compiled_bare = set(bare.compiled_in(bare_function, bare_layer))
    sources = {module["file"] for module in loaded_bare.values() if module["file"].endswith(".py")}
    assert sources <= compiled_bare
    packages = {name.split(".")[0] for name in loaded_bare}
    assert {"app", "zego_resume", "requests", "urllib3", "aws_lambda_powertools"} <= packages

    # With the shipped bytecode, the same modules were imported, none was compiled, and each
    # names a .pyc that the build shipped
    loaded = {**shipped.loaded_from(function_dir), **shipped.loaded_from(layer_dir)}
    assert set(loaded) == set(loaded_bare)
    assert shipped.compiled_in(function_dir, layer_dir) == []
    for name, module in loaded.items():
        if module["file"].endswith(".py"):
            assert Path(module["cached"]).is_file(), name
    report(
        "compiled",
        f"built artifact: {len(sources)} modules imported from it on one event, 0 compiled at import "
        f"({len(compiled_bare)} with its bytecode deleted)",
    )


def test_the_pruned_layer_loads_the_same_modules_as_the_whole_install(
    deployed: Lambda, full_layer: Path, tmp_path: Path
) -> None:
    function_dir, layer_dir = deployed.shipped()
    loaded = {}
    for name, layer in (("pruned", layer_dir), ("whole", full_layer)):
        deployed.zego.reset()
        deployed.zego.inject(Fault.of_code(30003))
        invocation = deployed.invoke(BUSY_EVENT, tmp_path, code=[function_dir, layer])
        assert invocation.result["answer"] == {"batchItemFailures": []}, invocation.stderr
        loaded[name] = set(invocation.loaded_from(layer))
    assert loaded["pruned"] == loaded["whole"]
    assert "charset_normalizer" in loaded["pruned"]  # requests imports it by name
