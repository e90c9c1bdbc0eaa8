"""The command line: run the emulator in the foreground until Ctrl-C or SIGTERM.

It prints the base URL on stdout once it listens. Every option: ``docs/emulator.md`` (Starting it).
"""

from __future__ import annotations

import argparse
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
            port=args.port,
        )
    except ValueError as err:  # the messages name the argument, never the secret
        parser.error(str(err))
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(emulator.start(), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


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
    add("--latency", type=float, default=0.0, help="seconds added to each answer")
    add("--stale-code", type=int, help="answer stale Sequences with this Code")
    return parser
