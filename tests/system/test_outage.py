"""Riding out a ZEGO outage, in compressed time: ZEGO's gateway answers HTTP 503 to everything
while 100 decisions wait and two execution environments poll (queue visibility 2 s, a probe per
second, redelivery delays capped at 4 s). Nothing is lost or dead-lettered, the dead gateway gets
at most 1.3 calls per environment per second, the environments idle through most of the outage,
and every decision is resumed soon after ZEGO returns."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from zegosim.aws import client
from zegosim.zego import Fault

from .conftest import Environments, Local, send_bodies, set_visibility_timeout
from .gateway import Gateway

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket, pytest.mark.timeout(300)]

OUTAGE_SECONDS = 30.0
DECISIONS = 100
ENVIRONMENTS = 2


@pytest.mark.parametrize("outage", ["answers 503", "refuses connections"])
def test_an_outage_is_ridden_out_without_hammering_zego_or_dead_letters(
    local: Local, tmp_path: Path, outage: str
) -> None:
    # Given 100 decisions waiting, a queue that hands messages back after 2 s (and whose redrive,
    # as the template derives it, leaves giving up to the age rule), and ZEGO down: its gateway
    # answers 503 to everything, or nothing listens and every connection is refused
    set_visibility_timeout(local, 2)
    client("sqs", local.environment).set_queue_attributes(
        QueueUrl=local.stack.queue_url,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": local.stack.dead_letter_queue_arn, "maxReceiveCount": 1000}
            )
        },
    )
    bodies = [
        {"streamIds": [f"o-{n}-a", f"o-{n}-b"], "sequence": 1764410000000 + n} for n in range(DECISIONS)
    ]
    send_bodies(local, bodies)
    zego = local.zego
    gateway = Gateway(int(zego.base_url.rsplit(":", 1)[1]))
    if outage == "answers 503":
        zego.inject_randomly([Fault.http(503)], probability=1.0)
    else:
        gateway.down()
    environment = {
        **local.environment,
        "ZEGO_API_BASE_URL": gateway.url,
        "ZEGO_OUTAGE_PROBE_SECONDS": "1",
        "REDELIVERY_MAX_DELAY_SECONDS": "4",
        "MAX_RECEIVE_COUNT": "1000",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",  # each invocation's "zego_calls"
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }

    # When two environments poll through the outage, and ZEGO comes back after it
    outage_began = time.time()
    fleet = Environments(local, ENVIRONMENTS, environment, tmp_path, max_seconds=OUTAGE_SECONDS + 60)
    time.sleep(OUTAGE_SECONDS)
    zego.clear_faults()
    gateway.up()
    outage_ended, back_at = time.time(), time.monotonic()
    stats = fleet.wait()
    gateway.down()

    # Then every decision was resumed and nothing was dead-lettered
    expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
    assert expected <= zego.resumed_stream_ids()
    assert local.dead_letters() == []
    # ... the dead gateway got at most 1.3 calls per environment per second of outage, counted by
    # the functions themselves (a refused connection never reaches ZEGO's records)
    refused = sum(
        line["zego_calls"]
        for line in fleet.log_lines()
        if line.get("message") == "invocation finished" and _logged_at(line) < outage_ended
    )
    assert refused <= 1.3 * ENVIRONMENTS * OUTAGE_SECONDS, refused
    # ... the environments were busy for at most a quarter of the outage
    busy = sum(
        max(0.0, min(end, outage_ended) - max(start, outage_began)) for s in stats for start, end in s["busy"]
    )
    assert busy <= 0.25 * ENVIRONMENTS * OUTAGE_SECONDS, busy
    # ... and every id was resumed within 12 s of ZEGO's return
    last_success = max(call.arrival for call in zego.calls() if call.code == 0)
    assert last_success - back_at <= 12.0
    print(
        f"outage drill ({outage}): {refused} calls to the dead gateway in {OUTAGE_SECONDS:.0f} s "
        f"x {ENVIRONMENTS} environments, busy {busy:.1f} s, "
        f"all resumed {last_success - back_at:.1f} s after ZEGO's return; "
        f"{len([call for call in zego.calls() if call.fault is not None])} reached the emulator"
    )


def _logged_at(line: dict[str, Any]) -> float:
    """When Powertools logged the line ("2026-12-02 13:59:32,535+0000"), in time.time()."""
    return datetime.strptime(line["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
