"""The read-only door a worker opens on its store for `hocba stats`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hocba.store.remote import arrow_to_rows, is_read_only, rows_to_arrow


@pytest.mark.parametrize(
    ("sql", "allowed"),
    [
        ("SELECT 1", True),
        ("  with x AS (SELECT 1) SELECT * FROM x", True),
        ("SELECT 1;", True),
        ("INSERT INTO hocba.records SELECT 1", False),
        ("SELECT 1; DROP TABLE hocba.records", False),
        ("TRUNCATE TABLE hocba.records", False),
    ],
)
def test_only_single_selects_are_answered(sql: str, allowed: bool) -> None:
    assert is_read_only(sql) is allowed


def test_rows_keep_their_types_over_the_wire() -> None:
    rows = [{"n": 3, "at": datetime(2024, 6, 1, 8, 30, tzinfo=UTC), "name": "Hà Nội"}]
    assert arrow_to_rows(rows_to_arrow(rows)) == rows
