"""National progress report latency on chDB at national scale (default 10 M records).

Rows are generated inside ClickHouse (`INSERT … SELECT … FROM numbers()`), so generating
10 M costs seconds, not a Python loop: 63 former provinces with a skewed size, grades 1–12,
~53k schools, six weeks of landings, plus 2 % corrections (revision 2) and 1 % re-landed
duplicates, which the figures must not count. Expected enrolment is set so coverage is ~60 %.

Timed: the report (`fetch_report`, all its queries) cold (first query of a fresh process's
store) and warm (median of 5), next to the two ways one could count without the
incremental aggregate, `count() … FINAL` and `uniqExact` over `records`.

    .venv/bin/python bench/stats_latency.py --rows 10000000 --dir /tmp/hocba-bench
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hocba.reference.loader import default_departments
from hocba.reference.model import ReferenceData
from hocba.reference.provinces import former_to_current, provinces_2024, provinces_2025
from hocba.reference.tables import reference_tables
from hocba.stats.report import fetch_report
from hocba.store.chdb_store import ChdbStore

DATABASE = "hocba"
YEAR = "2023-2024"


def _array(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def generate_sql(rows: int, start: int, revision: int) -> str:
    """Rows `start … start+rows` of the synthetic set, every column a function of `number`."""
    codes = sorted(provinces_2024())
    mapping = former_to_current()
    names = provinces_2024()
    # A hash, not rand(): a correction or re-landing of `number` must hit the same key.
    province = f"toUInt32(floor(pow((sipHash64(number) % 1000000) / 1e6, 1.6) * {len(codes)})) + 1"
    return f"""
INSERT INTO {DATABASE}.records (school_year, school_code, grade, student_key, revision,
    content_hash, level, level_code, gender, ethnicity_code, school_type, province_code_2024,
    province_name_2024, province_code_2025, learning_result, sender_code, sent_at, landed_at)
SELECT '{YEAR}', concat(p, leftPad(toString(number % 840), 6, '0')) AS school_code,
    toUInt8(number % 12 + 1) AS grade, hex(sipHash128(number)), {revision},
    hex(sipHash64(number, {revision})),
    multiIf(grade <= 5, 'PRIMARY', grade <= 9, 'LOWER_SECONDARY', 'UPPER_SECONDARY'),
    multiIf(grade <= 5, '02', grade <= 9, '03', '04'),
    if(number % 2 = 0, 'MALE', 'FEMALE'), if(number % 7 = 0, '02', '01'),
    if(number % 10 = 0, 'private', 'public'), p,
    arrayElement({_array([names[c].name for c in codes])}, idx),
    arrayElement({_array([mapping[c] for c in codes])}, idx),
    arrayElement(['HOAN_THANH', 'HOAN_THANH_TOT', 'TOT', 'KHA', 'DAT'], number % 5 + 1),
    concat('SGD-2024-', p), landed - toIntervalSecond(30), landed
FROM (
    SELECT number, {province} AS idx, arrayElement({_array(codes)}, idx) AS p,
        toDateTime64('2024-05-20 00:00:00', 3, 'UTC')
            + toIntervalSecond(number * 3628800 / {max(start + rows, 1)}) AS landed
    FROM numbers({start}, {rows})
)
"""


def load(path: Path, rows: int) -> None:
    shutil.rmtree(path, ignore_errors=True)
    store = ChdbStore(path, DATABASE)
    try:
        store.ensure_schema()
        reference = ReferenceData(
            provinces_2024=provinces_2024(),
            provinces_2025=provinces_2025(),
            former_to_current=former_to_current(),
            departments={d.code: d for d in default_departments(2024)},
        )
        for name, table in reference_tables(reference).items():
            store.replace_reference(name, table)
        started = time.perf_counter()
        store.query(generate_sql(rows, 0, 1))
        store.query(generate_sql(rows // 50, 0, 2))  # corrections of 2 %
        store.query(generate_sql(rows // 100, rows // 2, 1))  # 1 % landed twice
        store.query(
            f"INSERT INTO {DATABASE}.expected_enrollment"
            " SELECT province_code_2024, school_year, grade, toUInt32(count() / 0.6)"
            f" FROM {DATABASE}.records GROUP BY province_code_2024, school_year, grade"
        )
        print(f"generated {rows:,} records (+3 %) in {time.perf_counter() - started:.1f} s")
    finally:
        store.close()


def timed(store: ChdbStore, sql: str) -> float:
    started = time.perf_counter()
    store.query(sql)
    return time.perf_counter() - started


def measure(path: Path) -> None:
    """Run in a fresh process, so 'cold' is the first query of a newly opened store."""
    store = ChdbStore(path, DATABASE)
    try:
        started = time.perf_counter()
        report = fetch_report(store, DATABASE, YEAR)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(5):
            started = time.perf_counter()
            fetch_report(store, DATABASE, YEAR)
            warm.append(time.perf_counter() - started)
        n = report.national
        print(f"national: {n.records:,} records of {n.expected:,} expected = {n.coverage_pct} %")
        median = statistics.median(warm)
        print(f"progress report (MV): cold {cold * 1000:.0f} ms, warm {median * 1000:.0f} ms")
        raw = f"FROM {DATABASE}.records WHERE school_year = '{YEAR}'"
        for label, sql in (
            (
                "count() FINAL",
                f"SELECT count() FROM {DATABASE}.records FINAL WHERE school_year = '{YEAR}'",
            ),
            ("uniqExact(key)", f"SELECT uniqExact(school_code, grade, student_key) {raw}"),
        ):
            runs = [timed(store, sql) for _ in range(3)]
            print(f"{label} over records: median {statistics.median(runs) * 1000:.0f} ms")
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hocba-stats-bench"))
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:
        measure(args.dir)
        return
    load(args.dir, args.rows)
    subprocess.run([sys.executable, __file__, "--measure-only", "--dir", str(args.dir)], check=True)


if __name__ == "__main__":
    main()
