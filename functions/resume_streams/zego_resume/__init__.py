"""Lifts publishing bans on ZEGOCLOUD RTC streams: the code behind functions/resume_streams/app.py.

Rooms: handler (triggers, runtime) -> domain (request, call_plan, outcome, resumer) ->
adapters (zego_client, secret_source, dead_letters, pacing), with config and observability.
"""
