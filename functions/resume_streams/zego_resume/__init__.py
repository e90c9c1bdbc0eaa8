"""Lifts publishing bans on ZEGOCLOUD RTC streams: the code behind functions/resume_streams/app.py.

Rooms, each with one reason to change:

* handler — `dispatch` (one invocation, event to answer) and `event_shapes` (the three event
  shapes read into deliveries), with `runtime` (the wiring), `config`, `observability` and
  `local_context` beside them;
* `domain/` — pure decisions: requests, the call plan and Sequence scheme, each call's attempts,
  outcomes, dispositions and dead-letter contents;
* `adapters/` — ZEGO over HTTPS, Secrets Manager, SQS, the rate budget and the thread pool;
* `ports` — the protocols between the domain and the adapters.

`make lint` checks the layers with import-linter: the domain imports no adapter, boto3, botocore
or requests.
"""
