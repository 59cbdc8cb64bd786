"""The hotline controller: Asterisk answers, this package decides what each call hears and where
it goes, and keeps the record.

One folder per concern: ``flow`` (the call, free of I/O) talks to ``session.CallSession``, which
``ari``, ``agi`` and ``sim.dry_run`` implement; ``routing`` reads the YAML, ``store`` keeps the
records, ``cli`` is the command line. See the README's "How it is built".
"""
