"""The command line: run the emulator in the foreground until Ctrl-C or SIGTERM.

It prints two lines on stdout once it listens: the base URL, then ``admin-token <token>``.
Every option: ``docs/emulator.md`` (Starting it).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from .emulator import ZegoEmulator


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until Ctrl-C or SIGTERM."""
    parser = argument_parser()
    args = parser.parse_args(argv)
    if not args.server_secret:
        parser.error("--server-secret or ZEGO_SERVER_SECRET is required")
    try:
        emulator = ZegoEmulator(
            args.app_id,
            args.server_secret,
            is_test=args.test,
            rate_limit=args.rate_limit,
            latency=args.latency,
            stale_code=args.stale_code,
            network_jitter=args.jitter_ms / 1000,
            jitter_seed=args.jitter_seed,
            connection_setup_delay=args.connection_setup_ms / 1000,
            port=args.port,
        )
    except ValueError as err:  # the messages name the argument, never the secret
        parser.error(str(err))
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The first line is what scripts wait for (bench/services.py reads it); the token next.
    print(emulator.start(), flush=True)
    print(f"admin-token {emulator.admin_token}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


def _non_negative_number(text: str) -> float:
    """An argparse type: a finite, non-negative number (of seconds or milliseconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def argument_parser() -> argparse.ArgumentParser:
    # Not __doc__: it is None under python -OO.
    summary = "Run a local stand-in for ZEGOCLOUD's Server API until Ctrl-C or SIGTERM."
    parser = argparse.ArgumentParser(prog="python -m zegosim.zego", description=summary)
    add = parser.add_argument
    add("--app-id", type=int, required=True)
    add(
        "--server-secret",
        default=os.environ.get("ZEGO_SERVER_SECRET"),
        help="defaults to $ZEGO_SERVER_SECRET",
    )
    add("--port", type=int, default=8787)
    add("--test", action="store_true", help="a test-environment AppId (IsTest=true)")
    add("--rate-limit", type=int, help="calls a second (default 20, 5 with --test)")
    add("--latency", type=_non_negative_number, default=0.0, help="seconds added to each answer")
    add("--stale-code", type=int, help="answer stale Sequences with this Code")
    add(
        "--jitter-ms",
        type=_non_negative_number,
        default=0.0,
        metavar="MS",
        help="each call reaches the rules 0..MS late, uniformly (default 0)",
    )
    add("--jitter-seed", type=int, default=0, metavar="N", help="seed of the jitter draws (default 0)")
    add(
        "--connection-setup-ms",
        type=_non_negative_number,
        default=0.0,
        metavar="MS",
        help="a new connection's first request is read MS late (default 0)",
    )
    return parser
