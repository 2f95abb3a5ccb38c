from django.db import connections


def release_db() -> None:
    """Hand this thread's connections back (to the pool on PostgreSQL) unless a transaction
    needs them: chat turns use the database before and after the stream, never during it."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()
