"""Reports for supervisors and the report to the Ministry (issue 10).

What belongs here: reading call facts from the store (facts), the period asked for (periods),
each measure defined once as a pure function (measures, documented in MEASURES.md), grouping
(grouping), the report as a typed result any face renders (report), its outputs (formats) and the
Ministry's DOCX (ministry). What does not: argument parsing (ivr.cli.report), writing calls.
"""
