"""The command line: run the emulator in the foreground until Ctrl-C or SIGTERM.

It prints two lines on stdout once it listens: the base URL, then ``admin-token <token>``.
The ServerSecret comes from ``--server-secret-file`` or ``$ZEGO_SERVER_SECRET``, never from argv
(where the process list would show it). Every option: ``docs/emulator.md`` (Starting it).
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from .emulator import ZegoEmulator

PROG = "zegosim.zego"
HOST = "127.0.0.1"
DEFAULT_PORT = 8787
SECRET_VARIABLE = "ZEGO_SERVER_SECRET"  # noqa: S105 - the variable's name, not a secret
USAGE_ERROR = 2  # as argparse exits on a bad command line
RUN_ERROR = 1


class CommandLineError(Exception):
    """A one-line reason to stop, and the exit status to stop with."""

    def __init__(self, message: str, status: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the emulator until Ctrl-C or SIGTERM; 0 then, 1 when it cannot listen, 2 on a bad
    command line."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        _refuse_secret_on_argv(arguments)
        args = argument_parser().parse_args(arguments)
        emulator = _emulator(args, os.environ if environ is None else environ)
        return _serve(emulator, args.port)
    except CommandLineError as err:
        print(f"{PROG}: {err}", file=sys.stderr, flush=True)
        return err.status


def _non_negative_number(text: str) -> float:
    """An argparse type: a finite, non-negative number (of seconds or milliseconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 for any free one."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be within 0..65535, not {port}")
    return port


def argument_parser() -> argparse.ArgumentParser:
    # Not __doc__: it is None under python -OO.
    summary = "Run a local stand-in for ZEGOCLOUD's Server API until Ctrl-C or SIGTERM."
    parser = argparse.ArgumentParser(
        prog="python -m zegosim.zego",
        description=summary,
        epilog=f"The ServerSecret comes from --server-secret-file, else from ${SECRET_VARIABLE}.",
        # No abbreviations: "--server-secret X" must not pass for "--server-secret-file X".
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--app-id", type=int, required=True, metavar="N", help="the AppId it answers for")
    add(
        "--server-secret-file",
        type=Path,
        metavar="PATH",
        help=f"a file holding the ServerSecret (wins over ${SECRET_VARIABLE})",
    )
    add(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"on {HOST}; 0 for any free one (default 8787)",
    )
    add("--test", action="store_true", help="a test-environment AppId (IsTest=true)")
    add("--rate-limit", type=int, metavar="N", help="calls a second (default 20, 5 with --test)")
    add(
        "--latency",
        type=_non_negative_number,
        default=0.0,
        metavar="SECONDS",
        help="added to every API answer (default 0)",
    )
    add(
        "--stale-code",
        type=int,
        metavar="CODE",
        help="answer a stale Sequence with this Code (default: answer 0, leave the stream as it is)",
    )
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


def _refuse_secret_on_argv(arguments: list[str]) -> None:
    for argument in arguments:
        if argument == "--server-secret" or argument.startswith("--server-secret="):
            # Refused before argparse, which would echo the value in its error.
            raise CommandLineError(
                f"--server-secret is not accepted (argv shows in the process list): "
                f"set {SECRET_VARIABLE} or pass --server-secret-file PATH"
            )


def _emulator(args: argparse.Namespace, environ: Mapping[str, str]) -> ZegoEmulator:
    secret = _server_secret(args.server_secret_file, environ)
    try:
        return ZegoEmulator(
            args.app_id,
            secret,
            is_test=args.test,
            rate_limit=args.rate_limit,
            latency=args.latency,
            stale_code=args.stale_code,
            network_jitter=args.jitter_ms / 1000,
            jitter_seed=args.jitter_seed,
            connection_setup_delay=args.connection_setup_ms / 1000,
            host=HOST,
            port=args.port,
        )
    except ValueError as err:  # the messages name the argument, never the secret
        raise CommandLineError(str(err)) from None


def _server_secret(path: Path | None, environ: Mapping[str, str]) -> str:
    if path is not None:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "not UTF-8 text"
            raise CommandLineError(f"cannot read --server-secret-file {path}: {reason.lower()}") from None
        if not secret:
            raise CommandLineError(f"--server-secret-file {path} is empty")
        return secret
    secret = environ.get(SECRET_VARIABLE, "").strip()
    if not secret:
        raise CommandLineError(f"no ServerSecret: set {SECRET_VARIABLE} or pass --server-secret-file PATH")
    return secret


def _serve(emulator: ZegoEmulator, port: int) -> int:
    try:
        base_url = emulator.start()
    except OSError as err:
        raise CommandLineError(_cannot_listen(err, port), RUN_ERROR) from None
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # Before the URL is printed: whoever reads it may stop us at once, and must stop us cleanly.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        # The first line is what scripts wait for (bench/services.py reads it); the token next.
        print(base_url, flush=True)
        print(f"admin-token {emulator.admin_token}", flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


def _cannot_listen(err: OSError, port: int) -> str:
    where = f"{HOST}:{port}"
    if err.errno == errno.EADDRINUSE:
        hint = "choose another --port, or --port 0 for any free one"
        return f"cannot listen on {where}: address already in use ({hint})"
    reason = (err.strerror or str(err)).lower()
    return f"cannot listen on {where}: {reason}"
