"""ARI, Asterisk's REST and websocket interface: our client and the Stasis application.

What belongs here: HTTP requests and their errors (client, errors, models), the websocket
(events), the typed events we read (event_types), the CallSession over ARI (session) and the
dispatcher that gives each call its events (app). What does not: what a call does (ivr.flow).
"""
