"""A vendor's records file (JSON lines), read in two passes so that a Department's year never
has to fit in memory.

A large province's year is over a million records, gigabytes as Python objects. The first
pass checks every line before anything is sent (a bad line near the end must not leave
everything before it published) and remembers where each class's lines start; the second
reads the records back one at a time, grouped by (school, class) for `publishing.batches`.
"""

from __future__ import annotations

import io
import json
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import fastavro

from hocba.pipeline.codec import STUDENT_RECORD, SchemaRegistry
from hocba.publishing import record_from_json

SchoolClass = tuple[str, str]


class BadLine(ValueError):
    """A line that cannot be published, with the number an editor shows for it."""

    def __init__(self, number: int, problem: str) -> None:
        super().__init__(f"{number}: {problem}")
        self.number = number
        self.problem = problem


@dataclass(frozen=True, slots=True)
class RecordsIndex:
    """Where each class's lines start and how many Avro bytes each record encodes to, in file
    order: sixteen bytes a record."""

    offsets: dict[SchoolClass, array[int]]
    sizes: dict[SchoolClass, array[int]]

    @property
    def records(self) -> int:
        return sum(map(len, self.offsets.values()))

    def largest_batch(self, batch_size: int) -> tuple[SchoolClass, int]:
        """The class whose batches of `batch_size` records encode to the most bytes, and
        those bytes (the records alone: the payload adds a dozen, the envelope the chain)."""
        return max(
            (
                (school_class, sum(sizes[start : start + batch_size]))
                for school_class, sizes in self.sizes.items()
                for start in range(0, len(sizes), batch_size)
            ),
            key=lambda found: found[1],
            default=(("", ""), 0),
        )


def index_records(lines: Iterable[bytes], registry: SchemaRegistry) -> RecordsIndex:
    """Check every line as the publisher will encode it, and index it by its class.

    Each record is encoded once here and thrown away, so a record that does not fit the
    schema is found with its line number instead of halfway through sending.
    """
    schema = registry.reader(STUDENT_RECORD)
    sink = io.BytesIO()
    offsets: dict[SchoolClass, array[int]] = {}
    sizes: dict[SchoolClass, array[int]] = {}
    position = 0
    for number, line in enumerate(lines, 1):
        if line.strip():
            record = _parse(line, number)
            try:
                fastavro.schemaless_writer(sink, schema, record)
            except (ValueError, TypeError, KeyError) as exc:
                raise BadLine(number, f"does not fit the StudentRecord schema: {exc}") from None
            school_class = (record["school_code"], record["class_name"])
            offsets.setdefault(school_class, array("q")).append(position)
            sizes.setdefault(school_class, array("l")).append(sink.tell())
            sink.seek(0)
            sink.truncate()
        position += len(line)
    return RecordsIndex(offsets, sizes)


def records_by_class(handle: IO[bytes], index: RecordsIndex) -> Iterator[dict[str, Any]]:
    """The indexed records, classes in (school, class) order, each class in file order.

    A file rewritten since it was indexed would hand back lines nobody checked, in the wrong
    batches: a record that is not of its indexed class, or not a record, stops the read."""
    for school_class in sorted(index.offsets):
        for offset in index.offsets[school_class]:
            handle.seek(offset)
            try:
                record = record_from_json(json.loads(handle.readline()))
                found = (record["school_code"], record["class_name"])
            except (ValueError, TypeError, KeyError):
                found = None
            if found != school_class:
                raise ValueError(
                    f"{getattr(handle, 'name', 'the file')} changed while it was published "
                    f"(byte {offset} is no longer a record of class {school_class[1]} of "
                    f"school {school_class[0]}): publish again once the file is final; "
                    "records already sent count as duplicates"
                )
            yield record


def _parse(line: bytes, number: int) -> dict[str, Any]:
    try:
        record = record_from_json(json.loads(line))
    except (ValueError, TypeError) as exc:
        raise BadLine(number, f"not a JSON record ({exc})") from None
    missing = [f for f in ("school_code", "class_name") if f not in record]
    if missing:
        raise BadLine(number, f"no {' or '.join(missing)}")
    return record
