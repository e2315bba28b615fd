"""A vendor's records file: every line checked before sending, records read back by class."""

from __future__ import annotations

import io
import json
import random

import pytest

from hocba.pipeline.codec import load_registry
from hocba.publishing import encode_payload, record_to_json
from hocba.records_file import BadLine, index_records, records_by_class
from hocba.synth import demo_schools, generate_records

REGISTRY = load_registry()


@pytest.fixture(scope="module")
def records() -> list[dict]:
    schools = demo_schools(["01", "48"], 2, 2, former_to_current={"01": "01", "48": "48"})
    return generate_records(schools, count=120, seed=5)


def as_file(records: list[dict], blank_after: int | None = None) -> io.BytesIO:
    lines = [json.dumps(record_to_json(r), ensure_ascii=False) + "\n" for r in records]
    if blank_after is not None:
        lines.insert(blank_after, "   \n")
    return io.BytesIO("".join(lines).encode())


def test_records_come_back_grouped_by_class_in_file_order_within_it(records: list[dict]) -> None:
    shuffled = random.Random(7).sample(records, len(records))
    handle = as_file(shuffled, blank_after=10)
    index = index_records(handle, REGISTRY)
    assert index.records == len(records)
    read = list(records_by_class(handle, index))
    by_class = sorted(shuffled, key=lambda r: (r["school_code"], r["class_name"]))
    assert read == by_class  # stable: a class keeps the file's order
    assert len(index.offsets) >= 3  # several classes, interleaved by the shuffle


def test_a_record_that_does_not_fit_the_schema_is_named_by_its_line(records: list[dict]) -> None:
    broken = [*records[:5], {**records[5], "grade": "four"}, *records[6:]]
    with pytest.raises(BadLine) as raised:
        index_records(as_file(broken, blank_after=2), REGISTRY)
    assert raised.value.number == 7  # the blank line counts: the number an editor shows
    assert "does not fit the StudentRecord schema" in raised.value.problem


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"[1, 2]\n", "not a JSON record"),
        (b'"text"\n', "not a JSON record"),
        (b'{"school_code": "0100001", "birth_date": "yesterday"}\n', "not a JSON record"),
        (b'{"class_name": "1A"}\n', "no school_code"),
    ],
)
def test_lines_that_are_not_records(line: bytes, problem: str) -> None:
    with pytest.raises(BadLine, match=problem):
        index_records(io.BytesIO(line), REGISTRY)


def test_an_empty_file_indexes_no_records() -> None:
    assert index_records(io.BytesIO(b"\n\n"), REGISTRY).records == 0


def test_the_largest_batch_is_measured_in_the_bytes_it_will_encode_to(
    records: list[dict],
) -> None:
    """A payload is its 10-byte header, the array's count (one byte here), the records and
    the array's end: the index must know the records' part exactly, before any signing."""
    index = index_records(as_file(records), REGISTRY)
    for batch_size in (5, 1_000):
        school_class, size = index.largest_batch(batch_size)
        of_class = [r for r in records if (r["school_code"], r["class_name"]) == school_class]
        payloads = {
            len(encode_payload(REGISTRY, of_class[start : start + batch_size]))
            for start in range(0, len(of_class), batch_size)
        }
        assert 10 + 1 + size + 1 == max(payloads)
    assert index.largest_batch(1_000)[1] > index.largest_batch(5)[1]


def test_a_file_rewritten_between_the_passes_stops_the_read(records: list[dict]) -> None:
    """Its new lines were never checked, and would land in the wrong class's batches."""
    index = index_records(as_file(records), REGISTRY)
    rewritten = as_file(list(reversed(records)))
    with pytest.raises(ValueError, match="changed while it was published"):
        list(records_by_class(rewritten, index))
