"""``ZegoEmulator``: ZEGO's rules and a fault plan behind one lock, served over HTTP.

The front callers use (tests, the demo, ``python -m zegosim.zego``); the rules live in
``rules.py``, the faults in ``faults.py``, the HTTP side in ``server.py``. Nothing here sleeps:
the server's handler threads sleep the network jitter, set-up delay and latency this object
hands them. See ``docs/emulator.md``.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from .faults import Fault, FaultPlan
from .rules import CallRecord, Decision, StaleRecord, ZegoRules
from .server import EmulatorServer


class ZegoEmulator:
    """A threaded HTTP server answering like ZEGO's Server API, with fault injection, network
    jitter, slow connection set-up, records, and an admin API bound to ``admin_token``."""

    def __init__(
        self,
        app_id: int,
        server_secret: str,
        *,
        is_test: bool = False,
        rate_limit: int | None = None,
        latency: float = 0.0,
        stale_code: int | None = None,
        network_jitter: float = 0.0,
        jitter_seed: int = 0,
        connection_setup_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        _check_seconds("latency", latency)
        _check_seconds("network_jitter", network_jitter)
        _check_seconds("connection_setup_delay", connection_setup_delay)
        self._rules = ZegoRules(
            app_id, server_secret, is_test=is_test, rate_limit=rate_limit, stale_code=stale_code, clock=clock
        )
        self._faults = FaultPlan()
        self._lock = threading.Lock()  # guards everything below and the rules
        self._monotonic = monotonic
        self._latency = latency
        self._jitter = network_jitter
        self._jitter_seed = jitter_seed
        self._jitter_rng = random.Random(jitter_seed)
        self._setup_delay = connection_setup_delay
        self._connections = 0
        self._in_flight = 0
        # Whoever can reach the port could otherwise rotate the secret or reset the records.
        self._admin_token = secrets.token_urlsafe(32)
        self._host = host
        self._port = port
        self._server: EmulatorServer | None = None

    # ----- settings, read-only ---------------------------------------------------------------

    @property
    def app_id(self) -> int:
        return self._rules.app_id

    @property
    def is_test(self) -> bool:
        return self._rules.is_test

    @property
    def rate_limit(self) -> int:
        """Calls allowed per sliding second (20, or 5 in the test environment, by default)."""
        return self._rules.rate_limit

    @property
    def stale_code(self) -> int | None:
        return self._rules.stale_code

    @property
    def admin_token(self) -> str:
        """The bearer token every admin API request must carry; random per emulator."""
        return self._admin_token

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread; return the base URL. Raises OSError when the
        address cannot be listened on (a busy port)."""
        if self._server is not None:
            raise RuntimeError("already started")
        server = EmulatorServer(self, self._host, self._port)
        server.serve_in_background()
        self._server = server
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> ZegoEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.address
        return f"http://{host}:{port}"

    # ----- control ---------------------------------------------------------------------------

    def rotate_secret(self, new_secret: str) -> None:
        """Use a new ServerSecret from now on; the old one then fails with 100000005."""
        with self._lock:
            self._rules.rotate_secret(new_secret)

    def set_latency(self, seconds: float) -> None:
        """Add this many seconds to every answer from now on."""
        _check_seconds("latency", seconds)
        with self._lock:
            self._latency = seconds

    def set_network_jitter(self, seconds: float, seed: int | None = None) -> None:
        """Make each API call from now on reach the rules 0..`seconds` late (uniform), drawn
        from a generator restarted at `seed` (None: the seed in use). 0 turns it off."""
        _check_seconds("network_jitter", seconds)
        with self._lock:
            self._jitter = seconds
            if seed is not None:
                self._jitter_seed = seed
            self._jitter_rng = random.Random(self._jitter_seed)

    def set_connection_setup_delay(self, seconds: float) -> None:
        """Make each new connection wait this long before its first request is read."""
        _check_seconds("connection_setup_delay", seconds)
        with self._lock:
            self._setup_delay = seconds

    def inject(self, *faults: Fault) -> None:
        """Give the next ``len(faults)`` validated calls one fault each, in order."""
        with self._lock:
            self._faults.inject(*faults)

    def inject_randomly(self, faults: Sequence[Fault], probability: float, seed: int = 0) -> None:
        """Give each validated call a random fault with this probability (0 turns it off)."""
        with self._lock:
            self._faults.inject_randomly(faults, probability, seed)

    def inject_for_stream(self, stream_id: str, fault: Fault, *, times: int | None = None) -> None:
        """Give every validated call that carries `stream_id` this fault (only the next `times`
        such calls, when given), before queued and random faults."""
        with self._lock:
            self._faults.inject_for_stream(stream_id, fault, times=times)

    def clear_faults(self) -> None:
        """Forget targeted, queued and random faults."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Clear records, stream state, faults and the rate window, and restart the jitter draws
        from their seed. Latency, jitter and set-up delay stay as set."""
        with self._lock:
            self._rules.reset()
            self._faults = FaultPlan()
            self._connections = 0
            self._jitter_rng = random.Random(self._jitter_seed)

    # ----- records ---------------------------------------------------------------------------

    def calls(self) -> list[CallRecord]:
        """Every request received on ``/``, in arrival order."""
        with self._lock:
            return self._rules.calls()

    def applied(self) -> list[CallRecord]:
        """Calls answered 0 without a fault that applied at least one stream."""
        with self._lock:
            return self._rules.applied()

    def resumed_stream_ids(self) -> set[str]:
        """Streams whose current state is resumed."""
        with self._lock:
            return self._rules.resumed_stream_ids()

    def stream_state(self, stream_id: str) -> tuple[str, int] | None:
        """``("resumed" | "forbidden", last applied Sequence)``, or None if never applied."""
        with self._lock:
            return self._rules.stream_state(stream_id)

    def stale(self) -> list[StaleRecord]:
        """Every stream refused by the Sequence rule."""
        with self._lock:
            return self._rules.stale()

    def rate_limited_count(self) -> int:
        """How many calls were answered 30002."""
        with self._lock:
            return self._rules.rate_limited_count()

    def max_calls_in_any_window(self) -> int:
        """Most calls counted by the rate limiter whose arrivals fit in one 1.0 s window."""
        with self._lock:
            return self._rules.max_calls_in_any_window()

    def code_counts(self) -> dict[int, int]:
        """How many times each Code was answered (calls without a JSON answer are not counted)."""
        with self._lock:
            return self._rules.code_counts()

    def connection_count(self) -> int:
        """TCP connections accepted since start or reset (shows whether clients keep alive)."""
        with self._lock:
            return self._connections

    def calls_in_flight(self) -> int:
        """API calls read off a connection but still held back by their network jitter."""
        with self._lock:
            return self._in_flight

    def state_summary(self) -> dict[str, Any]:
        """The admin API's ``/_emulator/state`` document."""
        with self._lock:
            return {
                **self._rules.summary(),
                "connections": self._connections,
                "inFlight": self._in_flight,
                "latencySeconds": self._latency,
                "networkJitterSeconds": self._jitter,
                "jitterSeed": self._jitter_seed,
                "connectionSetupSeconds": self._setup_delay,
            }

    # ----- what the HTTP server calls, from its handler threads ------------------------------

    def connection_opened(self) -> float:
        """Count a new connection; return how long it waits before its first request is read."""
        with self._lock:
            self._connections += 1
            return self._setup_delay

    def draw_network_delay(self) -> float:
        """How late the API call just read reaches the rules; it is in flight until then."""
        with self._lock:
            self._in_flight += 1
            if self._jitter <= 0:
                return 0.0
            return self._jitter_rng.uniform(0.0, self._jitter)

    def receive_api_call(
        self,
        query: str,
        *,
        jitter: float = 0.0,
        connection_setup_delay: float = 0.0,
        arrival: float | None = None,
    ) -> tuple[Decision, float]:
        """The call has arrived: judge and record it. Returns the decision and the latency to
        add to its answer. Pairs with ``draw_network_delay``.

        `arrival` is when the call reached ZEGO (a monotonic time, at most now): when its first
        byte reached the server plus its network delay. Without it, now."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            # The rate window counts a call where it arrives, before any answer latency, and
            # however late this thread woke up to judge it.
            now = self._monotonic()
            arrival = now if arrival is None else min(arrival, now)
            decision = self._rules.receive(
                query,
                arrival,
                faults=self._faults,
                jitter=jitter,
                connection_setup_delay=connection_setup_delay,
            )
            return decision, self._latency


def _check_seconds(name: str, seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{name} must be a finite number >= 0")
