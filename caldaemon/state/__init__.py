"""caldaemon's memory (DESIGN.md §6): sync tokens, a cache of normalized events, the
buffers it owns, violations, the notice outbox and operational problems, in one SQLite
file. This package holds every SQL statement caldaemon runs: :mod:`.db` the schema,
migrations and transactions, one module per table family beside it."""

from caldaemon.state.db import SCHEMA_VERSION, State, StateError, Tables

__all__ = ["SCHEMA_VERSION", "State", "StateError", "Tables"]
