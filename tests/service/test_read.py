"""The read-only pass of ``check``: the garbage collector looks less often while a
practice is read in bulk, and is left as it was found."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from caldaemon.service.read import BULK_YOUNG_COLLECTION, check, fewer_collections
from tests.support import TZ, make_settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=TZ)  # the week of the fixture's series


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 9, 11)  # the test's own, to be found again
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


def test_the_youngest_generation_is_collected_less_often_inside_and_as_before_after(
    thresholds: tuple[int, int, int],
) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (BULK_YOUNG_COLLECTION, 9, 11)
    assert gc.get_threshold() == thresholds


def test_the_thresholds_come_back_when_reading_fails(thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a reader that broke")
    assert gc.get_threshold() == thresholds


def test_a_higher_threshold_set_by_the_caller_is_kept(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(BULK_YOUNG_COLLECTION * 2, 9, 11)
    with fewer_collections():
        assert gc.get_threshold()[0] == BULK_YOUNG_COLLECTION * 2


def test_check_leaves_the_collector_as_it_found_it(thresholds: tuple[int, int, int]) -> None:
    path = FIXTURE / "recurring_session_one_moved_one_cancelled.ics"
    settings = make_settings(
        {},
        clinician={"calendars": [{"id": "practice", "provider": "ics", "path": str(path)}]},
    )
    [result] = check(settings, NOW)
    assert result.errors == [] and result.classified
    assert gc.get_threshold() == thresholds
