"""The prompts: the manifest (id → Vietnamese text or recording), building their audio, checking it.

What belongs here: reading prompts/manifest.yaml, turning text and recordings into the formats
Asterisk plays, checking they are all there. What does not: which prompt a call plays (the flow)
or the command-line faces of these (ivr.cli.prompts).
"""
