"""Lifts publishing bans on ZEGOCLOUD RTC streams: the code behind functions/resume_streams/app.py.

Rooms: handler (dispatch, event_shapes) -> domain (request, call_plan, outcome, resumer) ->
adapters (zego_client, secret_source, dead_letters, aws_clients, pacing), with config and
observability.
"""
