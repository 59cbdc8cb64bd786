"""The survey sent over Zalo (ZNS) after a call where the caller pressed the consent key.

One module per role: :mod:`.phone` (numbers to 84xxxxxxxxx, pure), :mod:`.codes` (what each ZNS
answer means for us, pure), :mod:`.tokens` (OAuth v4 tokens kept in a file, replaced atomically),
:mod:`.client` (one send over aiohttp), :mod:`.outbox` (the durable table: each call's survey sent
at most once), :mod:`.sender` (the task ``ivr run`` starts), :mod:`.webhook` (answers coming
back). The call flow only records the consent as a step; nothing here runs during a call.
"""
