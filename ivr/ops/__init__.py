"""Operations: what a supervisor's monitoring reads from a running controller.

What belongs here: the /metrics and /healthz server and the readiness checks. What does not:
the metrics' definitions (ivr.metrics) or anything a call does.
"""
