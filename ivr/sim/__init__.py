"""Simulators, for the demo, the tests and `ivr routing simulate`.

What belongs here: a simulated Asterisk (ARI over HTTP and websocket, FastAGI, AMI) with scripted
callers and clerks, the harness that runs the app against it, the demo, and the dry-run
CallSession (no sockets at all). What does not: anything production needs to handle a call.
"""
