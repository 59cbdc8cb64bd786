"""FastAGI: the same call flow for dialplans that call AGI(agi://host:4573/hotline)."""
