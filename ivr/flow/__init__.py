"""The call flow: one coroutine per call walking the routing graph over a CallSession.

What belongs here: the engine (safety net), the call context, what each node type does, office
hours, whether a recording holds speech (speech), the call record built from the call's
steps, the hand-back to the dialplan. What does
not: any I/O (no aiohttp, YAML or SQL); the adapters in ivr.ari, ivr.agi and ivr.sim do that.
"""
