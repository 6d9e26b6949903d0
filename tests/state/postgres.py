"""A real PostgreSQL for tests: a throwaway cluster (:mod:`tests.state.cluster`), or the
test skipped with the reason where PostgreSQL is missing or cannot start."""

from __future__ import annotations

import pytest

from tests.state.cluster import ClusterUnavailable, Postgres, start_cluster

__all__ = ["Postgres", "start_postgres"]


def start_postgres() -> Postgres:
    """A running throwaway cluster; skips the test where there can be none."""
    try:
        return start_cluster()
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))
