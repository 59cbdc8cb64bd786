"""The call-record store: SQL (SQLite by default, PostgreSQL at scale) behind a writer that never
blocks a call and never loses a record."""
