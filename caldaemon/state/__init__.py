"""caldaemon's memory (DESIGN.md §6): sync tokens, a cache of normalized events, the
buffers it owns, violations, the notice outbox and operational problems, in one SQLite
file. This package holds every SQL statement caldaemon runs: :mod:`.schema` the schema and
its migrations, :mod:`.db` opening and transactions, one module per table family beside
them."""

from caldaemon.state.db import NewerStateError, State, StateError, Tables
from caldaemon.state.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "NewerStateError", "State", "StateError", "Tables"]
