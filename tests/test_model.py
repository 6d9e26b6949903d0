"""A violation's fingerprint: the identity state, acks and notices refer to across polls."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from caldaemon.model import Severity, Violation

LATE = Violation(
    clinician="lee",
    rule="working_hours",
    severity=Severity.ERROR,
    date=date(2026, 12, 1),
    start=datetime(2026, 12, 1, 16, 30),
    end=datetime(2026, 12, 1, 17, 20),
    message="outside your hours",
    subject="work/t@20261201T163000",
)


def test_fingerprint_is_the_digest_that_state_and_acks_already_hold():
    # sha256 of "lee\0working_hours\0work/t@20261201T163000", first 32 hex digits: a
    # different value would orphan every stored violation and `caldaemon ack`.
    assert LATE.fingerprint == "0866141c93003b2522a436596aa48628"


def test_fingerprint_names_the_boundary_and_its_subject_not_the_words_or_times():
    reworded = dataclasses.replace(
        LATE, message="still outside your hours", end=datetime(2026, 12, 1, 17, 40)
    )
    assert reworded.fingerprint == LATE.fingerprint
    assert dataclasses.replace(LATE, accepted=True).fingerprint == LATE.fingerprint


def test_another_subject_or_rule_is_another_fingerprint():
    assert dataclasses.replace(LATE, subject="work/u@20261201T163000").fingerprint != (
        LATE.fingerprint
    )
    assert dataclasses.replace(LATE, rule="breaks").fingerprint != LATE.fingerprint
    assert dataclasses.replace(LATE, clinician="kim").fingerprint != LATE.fingerprint


def test_equality_ignores_the_subject_as_before_the_fingerprint_was_kept():
    # subject is compare=False; the fingerprint made from it must not bring it back.
    assert dataclasses.replace(LATE, subject="work/u@20261201T163000") == LATE
