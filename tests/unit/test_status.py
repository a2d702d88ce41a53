"""The annotation lifecycle table: complete, closed, and the rules the API relies on."""

from __future__ import annotations

import pytest

from postroom.status import TRANSITIONS, AnnotationStatus

A = AnnotationStatus


def test_every_status_has_a_row_and_every_target_is_a_status() -> None:
    assert set(TRANSITIONS) == set(A)
    for targets in TRANSITIONS.values():
        assert targets <= set(A)


def test_purged_is_terminal_and_reachable_from_every_settled_state() -> None:
    assert TRANSITIONS[A.PURGED] == frozenset()
    machine_held = {A.IMPORTING, A.EXPORTING, A.PURGED}
    for source in set(A) - machine_held:
        assert A.PURGED in TRANSITIONS[source], source


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        (A.IMPORTING, A.TO_REVIEW, True),
        (A.IMPORTING, A.FAILED_IMPORT, True),
        (A.TO_REVIEW, A.REVIEWING, True),
        (A.REVIEWING, A.REVIEWING, True),  # a reloaded review page starts it again
        (A.CONFIRMED, A.EXPORTING, True),
        (A.EXPORTING, A.EXPORTED, True),
        (A.EXPORTING, A.TO_REVIEW, False),  # an export in flight is the pipeline's
        (A.EXPORTED, A.TO_REVIEW, False),
        (A.DELETED, A.TO_REVIEW, True),  # restore until purged
        (A.FAILED_IMPORT, A.TO_REVIEW, False),
        (A.FAILED_IMPORT, A.IMPORTING, True),  # an operator's retry
        (A.CREATED, A.TO_REVIEW, False),  # only an import reaches to_review
    ],
)
def test_selected_transitions(source: A, target: A, allowed: bool) -> None:
    assert (target in TRANSITIONS[source]) is allowed


def test_statuses_are_their_wire_strings() -> None:
    assert A.FAILED_EXPORT == "failed_export"
    assert f"{A.TO_REVIEW}" == "to_review"
