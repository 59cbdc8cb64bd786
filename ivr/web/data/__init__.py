"""The console's data-access layer over the store: handlers call these, never SQL.

users (accounts and the audit log), calls (search with keyset pages, one call's timeline),
voicemails (inbox, one message, its status), wallboard (the live snapshot).
"""
