"""Database connections handed back between a request's units of work."""

from django.db import connections


def release_db() -> None:
    """Hand this thread's connections back (to the pool on PostgreSQL) unless a transaction
    needs them: chat turns use the database before and after the stream, never during it.

    A SQLite connection is only a file handle, so the executor thread keeps it: opening one
    registers Django's SQL functions and runs the PRAGMAs, a large part of a chat's database
    cost when done twice per chat (bench/results)."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block and conn.vendor != "sqlite":
            conn.close()
