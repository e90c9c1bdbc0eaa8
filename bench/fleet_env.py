"""One execution environment of the local stack (zegosim.lambda_runtime), its rate ledger's
requests timed (bench/ledger_probe.py): the stats file it writes gains "ledgerRequests".

    python -m bench.fleet_env [zegosim.lambda_runtime's arguments, --stats FILE among them]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import ledger_probe
from zegosim import lambda_runtime


def main(argv: list[str]) -> int:
    ledger_probe.install()
    status = lambda_runtime.main(argv)
    if "--stats" in argv:
        path = Path(argv[argv.index("--stats") + 1])
        if path.exists():
            stats = json.loads(path.read_text())
            stats["ledgerRequests"] = ledger_probe.request_times()
            path.write_text(json.dumps(stats))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
