"""Complaint cases (phản ánh, kiến nghị): from a call, a voicemail or by hand, to resolution.

One small module per role: status (the status machine, pure), numbering (PAKN-YYYY-NNNN, a
counter row per year), calendar (working days over the hotline's own office calendar), rules
(categories and deadlines, configurable, with defaults), owners (owner unit from the routing
file), access (who sees which case, masking), store (reads and writes), digest (per owner unit,
printed or e-mailed), mail (SMTP), figures (satisfaction and case figures for the reports).

What does not belong here: argument parsing (ivr.cli.cases), the call flow, the web console.
"""
