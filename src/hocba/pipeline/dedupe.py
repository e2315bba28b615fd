"""Per-record deduplication against the landed state (DESIGN §5, layer 2).

Given one message's rows and, for their keys, the (revision, content hash) already landed
(including by earlier messages of the same batch, `landing.Checked.decide`), each row is new,
an exact duplicate (dropped, counted), stale (older revision than landed: dropped, counted),
a correction (higher revision: landed) or a conflict: the revision already landed (or sent
earlier in the message) with other content. A conflict is a record-level failure, not a
duplicate: the vendor changed a record without raising its revision, and dropping it as a
duplicate would lose the change in silence. Within one message only the highest revision of
a key survives; across the messages of a batch a key may land twice, a correction after its
original, and `records`' ReplacingMergeTree keeps the highest revision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hocba.domain.columns import RECORD_KEY, RecordKey


@dataclass(frozen=True, slots=True)
class Classified:
    to_land: tuple[Mapping[str, Any], ...]
    new: int
    corrections: int
    duplicates: int
    stale: int
    conflicts: tuple[Mapping[str, Any], ...] = ()  # same key and revision, other content


def record_key(row: Mapping[str, Any]) -> RecordKey:
    return tuple(row[name] for name in RECORD_KEY)


def classify(
    rows: Sequence[Mapping[str, Any]], landed: Mapping[RecordKey, tuple[int, str]]
) -> Classified:
    best: dict[RecordKey, Mapping[str, Any]] = {}
    # Rows at their key's best revision with other content than the first one sent. They are
    # conflicts only if that revision is what the key ends at: a higher revision later in the
    # message, or already landed, supersedes them all, so they are stale, not lost changes.
    rivals: dict[RecordKey, list[Mapping[str, Any]]] = {}
    duplicates = stale = 0
    for row in rows:
        key = record_key(row)
        seen = best.get(key)
        if seen is None:
            best[key] = row
        elif row["revision"] > seen["revision"]:
            best[key] = row
            stale += 1 + len(rivals.pop(key, ()))
        elif row["revision"] < seen["revision"]:
            stale += 1
        elif row["content_hash"] == seen["content_hash"]:
            duplicates += 1
        else:
            rivals.setdefault(key, []).append(row)
    to_land: list[Mapping[str, Any]] = []
    conflicts: list[Mapping[str, Any]] = []
    new = corrections = 0
    for key, row in best.items():
        previous = landed.get(key)
        contested = rivals.get(key, ())
        if previous is not None and row["revision"] < previous[0]:
            stale += 1 + len(contested)
            continue
        conflicts.extend(contested)
        if previous is None:
            new += 1
            to_land.append(row)
        elif row["revision"] > previous[0]:
            corrections += 1
            to_land.append(row)
        elif row["content_hash"] == previous[1]:
            duplicates += 1
        else:
            conflicts.append(row)
    return Classified(tuple(to_land), new, corrections, duplicates, stale, tuple(conflicts))
