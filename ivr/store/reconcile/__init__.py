"""Reconciliation: every call Asterisk saw gets a row, including those no controller recorded.

Asterisk's CEL events are the source: ``cel`` parses the lines of ``cel_custom``'s CSV file
(pure), ``facts`` folds one call's events into what is known of it (pure), ``source`` copies the
file's new lines into the ``cel`` table (on PostgreSQL ``cel_pgsql`` writes there itself),
``write`` turns finished calls without a row into ``fallback`` rows, and ``task`` runs both, at
start and continuously, and keeps the lag gauge.
"""
