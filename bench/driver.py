"""Runs one handler in a fresh process, as Lambda would, and prints what it measured.

Started by the benchmarks (bench/common.py's run_child) as ``python bench/driver.py SPEC
[SPAWNED_AT]``: SPEC is a JSON file naming the handler (its module, and the directories to put
first on sys.path — Lambda's code directory), the warm-up events, the measured events and what else
to report; SPAWNED_AT is the parent's time.monotonic() just before it started this process
(CLOCK_MONOTONIC is system-wide on Linux, so the difference is the interpreter's start-up).

The result is one line on stdout, ``BENCH-RESULT {json}``; the function's own output (EMF
metrics, warnings) shares stdout and is counted by the parent. Markers on stderr split a
``-X importtime`` trace into "import" and "first event".

Standard library only, and as little of it as possible before the handler is imported: what
this file imports first is paid by every handler measured with it, ours and the baselines.
"""

import sys
import time

STARTED = time.monotonic()  # the first thing this process does once the interpreter is up

import json  # noqa: E402 - after the clock: paid, like the rest, by every handler measured
import os  # noqa: E402

RESULT_PREFIX = "BENCH-RESULT "
MARK_PREFIX = "BENCH-MARK "


class LambdaContext:
    """What the handler and Powertools read from Lambda's context object (as zegosim's, without
    importing zegosim: the driver must weigh the same for every handler)."""

    def __init__(self, number: int, timeout_seconds: float) -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = "zego-stream-resume-ResumeStreamsFunction"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.aws_request_id = f"bench-{os.getpid()}-{number}"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = "/aws/lambda/zego-stream-resume"
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def mark(phase: str) -> None:
    sys.stderr.write(f"{MARK_PREFIX}{phase}\n")
    sys.stderr.flush()


def emulator_state(url: str | None, token: str | None) -> dict[str, object] | None:
    if not url:
        return None
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the loopback URL the parent gave
        f"{url}/_emulator/state", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        state = json.loads(response.read())
    assert isinstance(state, dict)
    return state


def delta(before: dict[str, object] | None, after: dict[str, object] | None) -> dict[str, object] | None:
    if before is None or after is None:
        return None
    counted = ("calls", "applied", "rateLimited", "stale", "resumedStreamIds", "connections")
    changes: dict[str, object] = {key: int(str(after[key])) - int(str(before[key])) for key in counted}
    changes["maxCallsInAnyWindow"] = after["maxCallsInAnyWindow"]  # since the parent's reset
    return changes


def peak_rss_kib() -> tuple[int, int]:
    """(VmHWM, ru_maxrss) in KiB. VmHWM is this process image's own peak. ru_maxrss is not, when
    the parent is large: Linux carries the pre-exec image's peak — the parent's, since
    subprocess forks (vfork) from it — into ru_maxrss at exec."""
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]), maxrss
    except OSError:
        pass
    return maxrss, maxrss


def summarise(answer: object) -> dict[str, object]:
    if isinstance(answer, dict) and "batchItemFailures" in answer:
        return {"batchItemFailures": len(answer["batchItemFailures"])}
    return {"answer": answer}


def main() -> None:
    mark("started")  # -X importtime: what follows is the handler's, not the interpreter's
    spawned_at = float(sys.argv[2]) if len(sys.argv) > 2 else None
    with open(sys.argv[1]) as file:
        spec = json.load(file)
    sys.path[:0] = spec["paths"]
    timeout = float(spec.get("timeout_seconds", 60))
    result: dict[str, object] = {"startup": STARTED - spawned_at if spawned_at is not None else None}

    import_started = time.perf_counter()
    module = __import__(spec["module"])
    handler = getattr(module, spec.get("handler", "lambda_handler"))
    result["import"] = time.perf_counter() - import_started
    mark("imported")

    number = 0
    if spec.get("import_only"):
        result["events"] = []
    else:
        for event in spec.get("warmup", []):
            number += 1
            handler(event, LambdaContext(number, timeout))
        measured = []
        emulator = (spec.get("emulator"), spec.get("emulator_token"))  # its URL and admin token
        for event in spec["events"]:
            number += 1
            before = emulator_state(*emulator)
            context = LambdaContext(number, timeout)
            cpu_started = time.process_time()  # every thread of the process
            wall_started = time.perf_counter()
            answer = handler(event, context)
            wall = time.perf_counter() - wall_started
            cpu = time.process_time() - cpu_started
            measured.append(
                {
                    "wall": wall,
                    "cpu": cpu,
                    **summarise(answer),
                    "emulator": delta(before, emulator_state(*emulator)),
                }
            )
        result["events"] = measured
        mark("handled")
        # A handler module may say more about its run (bench/ledger_probe.py: the rate budget's
        # figures and the ledger's request times); the app module says nothing.
        report = getattr(module, "bench_report", None)
        if report is not None:
            result["report"] = report()

    import resource

    in_process = time.monotonic() - STARTED
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["inProcess"] = in_process
    result["cpuTotal"] = usage.ru_utime + usage.ru_stime
    result["maxRssKiB"], result["ruMaxRssKiB"] = peak_rss_kib()
    result["modules"] = len(sys.modules)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
