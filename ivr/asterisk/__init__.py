"""Asterisk's own configuration: the files we write for it and the phones' pjsip sections.

What belongs here: generating configuration from the routing (pjsip endpoints, the example's
http/ari/manager files, the dialplan copy). What does not: talking to a running Asterisk
(ivr.ari, ivr.agi, ivr.ami) or the simulator of one (ivr.sim).
"""
