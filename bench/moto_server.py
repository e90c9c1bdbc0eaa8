"""moto server as `python -m moto.server` runs it, with DynamoDB's conditional writes made atomic
first (zegosim.aws.make_dynamodb_writes_atomic, as the in-process MotoServer of the tests does).

The fleet's rate ledger relies on DynamoDB applying one conditional UpdateItem at a time; moto's
threaded server does not, so two environments reserving at once could be handed the same slots.
Every benchmark's moto runs here, so the fleet rows meet a DynamoDB as strict as the real one.

    python -m bench.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys

from moto.server import main

from zegosim.aws import make_dynamodb_writes_atomic

if __name__ == "__main__":
    make_dynamodb_writes_atomic()
    main(sys.argv[1:])
