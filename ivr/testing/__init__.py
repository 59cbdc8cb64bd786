"""Helpers for tests and benchmarks only: a throwaway PostgreSQL cluster.

Production code never imports this package; the dry-run CallSession lives in ivr.sim.dry_run.
"""
