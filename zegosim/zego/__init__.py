"""A local stand-in for ZEGOCLOUD's Server API (``ResumeRTCStreams`` / ``ForbidRTCStreams``).

It checks what ZEGO documents and records what it saw, so tests, the demo and benchmarks can
assert on ZEGO-side effects without a ZEGO account. Standard library only, so it starts in
milliseconds. How to run it, the rules it enforces and the admin API: ``docs/emulator.md``.

- ``rules.py``: ZEGO's rules and the records, pure (no sockets, threads or sleeping);
- ``faults.py``: ``Fault`` and the ``FaultPlan`` that hands faults out;
- ``server.py``: the threaded HTTP server, its handler and the admin API;
- ``emulator.py``: ``ZegoEmulator``, the front that puts them together;
- ``cli.py``: ``python -m zegosim.zego``.
"""

from .emulator import ZegoEmulator
from .faults import Fault, FaultPlan
from .rules import FORBID, RESUME, CallRecord, StaleRecord, zego_signature

__all__ = [
    "FORBID",
    "RESUME",
    "CallRecord",
    "Fault",
    "FaultPlan",
    "StaleRecord",
    "ZegoEmulator",
    "zego_signature",
]
