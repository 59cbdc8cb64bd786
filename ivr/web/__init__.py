"""The web console (`ivr web`): a Vietnamese console for supervisors, clerks and admins.

What belongs here: aiohttp wiring (app), sign-in and roles (auth, roles, passwords, security),
one module per page under pages/, the data-access layer over the store (data/), templates and
static files. What does not: any call handling. The flow never imports this package; this
package only reads the store (and writes its own tables: accounts, audit, voicemail status).
"""
