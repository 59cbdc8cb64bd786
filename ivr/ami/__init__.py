"""AMI, Asterisk's manager interface: the phones' states and hang-up causes (panoramisk).

What belongs here: watching endpoints and hang-ups. What does not: controlling calls (ivr.ari).
"""
