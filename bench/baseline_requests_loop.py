"""The CPU baseline: the least a Python client can do per ZEGO call — a plain loop of
`requests.Session.get` over URLs signed in advance, reading each answer's Code.

Started by bench/benchmarks/cpu_per_call.py as ``python bench/baseline_requests_loop.py SPEC``.
Each URL carries 20 stream ids and a Sequence of its own, and is signed with the emulator's secret
and a fresh nonce, so the emulator answers 0 as it does to the function. Calls are spaced as the
function's pacer spaces them (sleeping costs no CPU), so the emulator's rate limit never answers
30002. Only the loop is measured, with time.process_time(); building the URLs and one warm-up call
(which opens the connection, as the function's warm-up invocation does) come before.

Prints one line, ``BENCH-RESULT {json}``.
"""

import hashlib
import json
import secrets
import sys
import time
from urllib.parse import urlencode

import requests


def signed_url(spec: dict[str, object], number: int) -> str:
    app_id = int(str(spec["app_id"]))
    nonce = secrets.token_hex(8)
    timestamp = int(time.time())
    signature = hashlib.md5(  # noqa: S324 - ZEGO's signature scheme
        f"{app_id}{nonce}{spec['server_secret']}{timestamp}".encode()
    ).hexdigest()
    ids_per_call = int(str(spec["ids_per_call"]))
    query = [
        ("Action", "ResumeRTCStreams"),
        ("AppId", str(app_id)),
        ("SignatureNonce", nonce),
        ("Timestamp", str(timestamp)),
        ("Signature", signature),
        ("SignatureVersion", "2.0"),
        *(("StreamId[]", f"{spec['prefix']}-{number:05d}-{index:02d}") for index in range(ids_per_call)),
        ("Sequence", str(int(str(spec["sequence"])) + number)),
    ]
    return f"{spec['url']}/?{urlencode(query)}"


def main() -> None:
    with open(sys.argv[1]) as file:
        spec = json.load(file)
    calls = int(spec["calls"])
    interval = float(spec["interval"])
    urls = [signed_url(spec, number) for number in range(calls + 1)]
    session = requests.Session()
    session.get(urls[0], timeout=(1.5, 3)).json()  # warm-up: connection and lazy imports
    time.sleep(1.1)  # the warm-up call leaves the sliding second before the loop starts

    codes: dict[int, int] = {}
    sleep_time = 0.0
    next_start = time.monotonic()
    cpu_started = time.process_time()
    wall_started = time.perf_counter()
    for url in urls[1:]:
        pause = next_start - time.monotonic()
        if pause > 0:
            time.sleep(pause)
            sleep_time += pause
        next_start = time.monotonic() + interval
        code = session.get(url, timeout=(1.5, 3)).json()["Code"]
        codes[code] = codes.get(code, 0) + 1
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    result = {"calls": calls, "cpu": cpu, "wall": wall, "sleep": sleep_time, "codes": codes}
    sys.stdout.write("BENCH-RESULT " + json.dumps(result) + "\n")


main()
