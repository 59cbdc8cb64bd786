"""Several controllers on one Asterisk: who is alive (presence), taking over a dead one's calls
(takeover), where a taken-over call goes on (resume), and the app that wires them (app)."""
