"""Synthetic, valid StudentRecords for the demo, the tests and the benchmark.

Deterministic per seed; every generated record passes `validate_record`, and `corrupt_record`
breaks exactly one rule, so tests and benchmarks can mix good and bad data at will.
"""

from hocba.synth.corrupt import CORRUPTION_KINDS, corrupt_record, make_correction
from hocba.synth.records import generate_records
from hocba.synth.schools import demo_schools

__all__ = [
    "CORRUPTION_KINDS",
    "corrupt_record",
    "demo_schools",
    "generate_records",
    "make_correction",
]
