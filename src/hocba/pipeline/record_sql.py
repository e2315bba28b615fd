"""The record stage as ClickHouse SQL: parse, validate and enrich every record of a batch.

Python reading each record cost more than fastavro alone (~150 µs of CPU per record with
validation, enrichment and landing); ClickHouse parses the same Avro ~8× faster than fastavro
and evaluates the rules column-wise (issue 8, `bench/RESULTS.md`). So after Python
verified each message's signature, the payloads' record bodies go into Avro object
containers (a block per message; up to one container per core, which ClickHouse reads on
threads of their own) and one `INSERT … SELECT` stages the whole batch:
every record with its reason code ('' when it passes), its record key and its enriched
columns.

The rules are generated from `rules_data`, the same tables `validate.py` reads, and a test
holds the two to the same reason code on every case of the rule tests. `validate.py` stays
the readable statement of the rules and writes the human-readable detail of a record that
failed here. This module only builds bytes and SQL text; the store runs them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hocba.domain.columns import ENRICHED_COLUMNS, LANDING_COLUMNS, RECORD_COLUMNS, RECORD_KEY
from hocba.domain.reasons import Reason
from hocba.pipeline import rules_data as data
from hocba.pipeline.codec import HEADER_LEN
from hocba.pipeline.rules_data import LEVEL_CODES

LEVELS = tuple(LEVEL_CODES)
STAGING_TABLE = "record_staging"  # a server store adds a suffix: one table per store
SYNC_MARKER = b"hocba-container!"  # any 16 bytes: the container is written and read once

# Staged per record besides the enriched columns: its message's position in the batch, its
# own position in the message, its reason code, and what authorisation and messages need.
STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("m", "UInt32"),
    ("idx", "UInt32"),
    ("code", "LowCardinality(String)"),
    ("authorised", "Bool"),
    ("department_province", "LowCardinality(String)"),
    *ENRICHED_COLUMNS,
)

# The personal ID is the HMAC's message; the key travels as its two pads, as query
# parameters, so it never appears in the SQL text.
_HMAC = (
    "lower(hex(SHA256(concat(unhex({hmac_outer:String}),"
    " SHA256(concat(unhex({hmac_inner:String}), r.personal_id))))))"
)


def hmac_pads(key: bytes) -> dict[str, str]:
    """HMAC-SHA256 = SHA256(outer pad ‖ SHA256(inner pad ‖ message)) (RFC 2104: a key longer
    than the 64-byte block is hashed first)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(64, b"\0")
    return {
        "hmac_inner": bytes(b ^ 0x36 for b in padded).hex(),
        "hmac_outer": bytes(b ^ 0x5C for b in padded).hex(),
    }


# --- The Avro container -------------------------------------------------------------------


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _avro_bytes(value: bytes) -> bytes:
    return _zigzag(len(value)) + value


def batch_schema_json(version_dir: Path) -> str:
    """The container's schema: a RecordBatch led by `m`, the message's position in the batch,
    with StudentRecord inlined and its logical types kept (the parsing canonical form drops
    them, and ClickHouse would then read a date as a plain int)."""
    record = json.loads((version_dir / "StudentRecord.avsc").read_text(encoding="utf-8"))
    batch = json.loads((version_dir / "RecordBatch.avsc").read_text(encoding="utf-8"))
    batch["fields"][0]["type"]["items"] = record
    position_field = {"name": "m", "type": "int", "doc": "the message's position in the batch"}
    return json.dumps(
        {**batch, "name": "StagedBatch", "fields": [position_field, *batch["fields"]]}
    )


def containers(schema_json: str, payloads: Sequence[bytes], parts: int) -> list[bytes]:
    """The batch in up to `parts` containers of consecutive messages, numbered across all:
    ClickHouse reads each file (or inserted block) on a thread of its own, so staging uses
    that many cores (two files on two cores: 45k → 64k rows/s)."""
    size = -(-len(payloads) // max(1, parts))  # ceiling division
    return [
        container(schema_json, payloads[start : start + size], first=start)
        for start in range(0, len(payloads), size or 1)
    ]


def container(schema_json: str, payloads: Sequence[bytes], first: int = 0) -> bytes:
    """One Avro object container: the header, then each payload's body as a block of its
    own, behind its position `m` (a record's fields are its fields' encodings in order, so
    the position's varint and the payload's body make one StagedBatch).

    The position travels in the data, so nothing depends on the order ClickHouse reads the
    rows in. A block per message, not one for all: the reader takes a block's declared size
    as a fence, so a payload that is cut short fails on its own bytes instead of reading on
    into the next message's records.
    """
    meta = {b"avro.schema": schema_json.encode(), b"avro.codec": b"null"}
    header = b"Obj\x01" + _zigzag(len(meta))
    header += b"".join(_avro_bytes(k) + _avro_bytes(v) for k, v in meta.items())
    blocks = (
        _zigzag(1) + _avro_bytes(_zigzag(m) + p[HEADER_LEN:]) + SYNC_MARKER
        for m, p in enumerate(payloads, start=first)
    )
    return header + _zigzag(0) + SYNC_MARKER + b"".join(blocks)


def clickhouse_type(schema: Any) -> str:
    """The ClickHouse type ClickHouse's Avro reader gives an Avro type: stated up front, so
    neither backend has to infer the structure of every batch."""
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) != 1 or len(schema) != 2:
            raise ValueError(f"only [null, T] unions are supported, not {schema}")
        return f"Nullable({clickhouse_type(branches[0])})"
    if isinstance(schema, str):
        schema = {"type": schema}
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, (dict, list)):
        return clickhouse_type(kind)
    if logical == "date":
        return "Date32"
    if logical == "timestamp-millis":
        return "DateTime64(3)"
    simple = {"string": "String", "int": "Int32", "long": "Int64", "boolean": "Bool"}
    simple |= {"double": "Float64", "float": "Float32", "bytes": "String"}
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        symbols = ", ".join(f"'{s}' = {i}" for i, s in enumerate(schema["symbols"]))
        return f"Enum8({symbols})"
    if kind == "array":
        return f"Array({clickhouse_type(schema['items'])})"
    if kind == "record":
        fields = ", ".join(f"{f['name']} {clickhouse_type(f['type'])}" for f in schema["fields"])
        return f"Tuple({fields})"
    raise ValueError(f"no ClickHouse type for Avro type {kind!r}")


def batch_structure(schema_json: str) -> str:
    """The `m Int32, records Array(Tuple(…))` structure for `file()` and the raw table."""
    fields = json.loads(schema_json)["fields"]
    return ", ".join(f"{field['name']} {clickhouse_type(field['type'])}" for field in fields)


# --- Validation: `validate.RULES` as one expression -----------------------------------------


def _strings(values: Iterable[str]) -> str:
    """A ClickHouse array literal; sets are sorted so the SQL text is stable."""
    ordered = values if isinstance(values, tuple) else sorted(values)
    return "[" + ", ".join(f"'{v}'" for v in ordered) + "]"


def _pairs(tables: Mapping[Any, Any], pick: Callable[[Any], Iterable[str]]) -> str:
    """A set of 'key|value' strings: a membership test of such a pair is one hash lookup,
    where picking a per-row array out of a nested array literal copies it for every row."""
    return _strings({f"{key}|{value}" for key, table in tables.items() for value in pick(table)})


def _per_level(pick: Callable[[data.LevelScale], float]) -> str:
    values = [float(pick(data.SCALES[level])) for level in LEVELS]
    return f"transform(toString(r.level), {_strings(LEVELS)}, {values}, {values[0]})"


def _assessment_scales() -> tuple[str, str]:
    """(pairs 'LEVEL|kind|assessment' allowed, pairs 'LEVEL|kind' that must be assessed)."""
    allowed, required = set(), set()
    for level, scale in data.SCALES.items():
        for kind, values in (
            ("scored", scale.scored_assessments),
            ("comment", scale.comment_assessments),
        ):
            allowed |= {f"{level}|{kind}|{value}" for value in values}
            if values:
                required.add(f"{level}|{kind}")
    return _strings(allowed), _strings(required)


def _rules() -> tuple[tuple[Reason, str], ...]:
    """Each rule as the condition a record passes, in the order of `validate.RULES`."""
    first = "toInt32OrZero(substring(r.school_year, 1, 4))"
    year = "toYear(r.birth_date)"
    digit = "toInt32OrZero(substring(r.personal_id, 4, 1))"
    grades, scales = data.GRADES, data.SCALES

    def of_level(value: str) -> str:
        return f"concat(toString(r.level), '|', {value})"

    scored = (
        f"concat(toString(r.grade), '|', s.subject_code) IN {_pairs(grades, lambda g: g.scored)}"
    )
    kind = f"if({scored}, '|scored', '|comment')"
    assessments, assessed = _assessment_scales()
    learning = "toString(ifNull(r.learning_result, ''))"
    conduct = "toString(ifNull(r.conduct_result, ''))"
    conducted = f"{_per_level(lambda sc: bool(sc.conduct_results))} = 1"
    eligible = (
        f"{of_level(learning)} IN {_pairs(scales, lambda sc: sc.passing_learning)}"
        f" AND (NOT {conducted}"
        f" OR {of_level(conduct)} IN {_pairs(scales, lambda sc: sc.passing_conduct)})"
        f" AND r.days_absent <= {_per_level(lambda sc: sc.promotion_max_absent)}"
    )
    quality_count = _per_level(lambda sc: len(sc.quality_codes))
    return (
        (
            Reason.VALIDATE_GRADE_LEVEL,
            "concat(toString(r.grade), '|', toString(r.level))"
            f" IN {_strings({f'{g}|{t.level}' for g, t in grades.items()})}",
        ),
        (
            Reason.VALIDATE_SCHOOL_YEAR,
            "match(r.school_year, '^[0-9]{4}-[0-9]{4}$')"
            f" AND toInt32OrZero(substring(r.school_year, 6, 4)) = {first} + 1"
            f" AND {first} BETWEEN {data.SCHOOL_YEAR_FIRST_MIN} AND {data.SCHOOL_YEAR_FIRST_MAX}",
        ),
        (Reason.VALIDATE_REVISION, "r.revision >= 1"),
        (Reason.VALIDATE_DAYS_ABSENT, f"r.days_absent BETWEEN 0 AND {data.MAX_DAYS_ABSENT}"),
        (
            Reason.VALIDATE_BIRTH_DATE,
            f"{first} - {year} BETWEEN r.grade + {data.AGE_OFFSET_MIN}"
            f" AND r.grade + {data.AGE_OFFSET_MAX}",
        ),
        (
            Reason.VALIDATE_PERSONAL_ID,
            "match(r.personal_id, '^0[0-9]{11}$')"
            f" AND substring(r.personal_id, 2, 2) IN {_strings(data.PROVINCE_CODES_2024)}"
            f" AND 1900 + 100 * intDiv({digit}, 2) = {year} - {year} % 100"
            f" AND (toString(r.gender) = 'UNKNOWN'"
            f" OR {digit} % 2 = (toString(r.gender) = 'FEMALE'))"
            f" AND toInt32OrZero(substring(r.personal_id, 5, 2)) = {year} % 100",
        ),
        (
            Reason.VALIDATE_SUBJECT_NOT_ALLOWED,
            "arrayAll(c -> concat(toString(r.grade), '|', c)"
            f" IN {_pairs(grades, lambda g: g.allowed)}, r.subjects.subject_code)"
            " AND length(arrayDistinct(r.subjects.subject_code)) = length(r.subjects)",
        ),
        (
            Reason.VALIDATE_SCORE,
            f"arrayAll(s -> if({scored},"
            " if(s.score IS NULL, r.disabled_not_assessed,"
            f" s.score BETWEEN {_per_level(lambda sc: sc.score_min)} AND 10"
            f" AND if({_per_level(lambda sc: sc.score_whole)} = 1, s.score = floor(s.score),"
            " abs(s.score * 10 - round(s.score * 10)) < 1e-6)),"
            " s.score IS NULL), r.subjects)",
        ),
        (
            Reason.VALIDATE_ASSESSMENT,
            "arrayAll(s -> if(s.assessment IS NULL,"
            f" concat(toString(r.level), {kind}) NOT IN {assessed} OR r.disabled_not_assessed,"
            f" concat(toString(r.level), {kind}, '|', toString(s.assessment)) IN {assessments}),"
            " r.subjects)",
        ),
        (
            Reason.VALIDATE_QUALITIES,
            f"arrayAll(q -> {of_level('q.code')} IN {_pairs(scales, lambda sc: sc.quality_codes)}"
            f" AND {of_level('toString(q.level)')}"
            f" IN {_pairs(scales, lambda sc: sc.quality_levels)}, r.qualities_competencies)"
            " AND length(arrayDistinct(r.qualities_competencies.code))"
            " = length(r.qualities_competencies)"
            f" AND (length(r.qualities_competencies) = {quality_count}"
            " OR r.disabled_not_assessed)",
        ),
        (
            Reason.VALIDATE_LEARNING_RESULT,
            "if(r.learning_result IS NULL, r.disabled_not_assessed,"
            f" {of_level(learning)} IN {_pairs(scales, lambda sc: sc.learning_results)})",
        ),
        (
            Reason.VALIDATE_CONDUCT_RESULT,
            f"if(NOT {conducted}, r.conduct_result IS NULL,"
            " if(r.conduct_result IS NULL, r.disabled_not_assessed,"
            f" {of_level(conduct)} IN {_pairs(scales, lambda sc: sc.conduct_results)}))",
        ),
        (
            Reason.VALIDATE_PROMOTION,
            "r.promotion IS NULL OR r.disabled_not_assessed"
            f" OR (toString(r.promotion) = 'PROMOTED') = ({eligible})",
        ),
    )


def validation_sql() -> str:
    """The first failing rule's reason code, then an unknown school's; '' when it passes."""
    branches = ", ".join(f"NOT ({check}), '{reason}'" for reason, check in _rules())
    return f"multiIf({branches}, s.code = '', '{Reason.ENRICH_UNKNOWN_SCHOOL}', '')"


# --- Enrichment: `records` columns as expressions ------------------------------------------


def _enriched() -> dict[str, str]:
    first = "toInt32OrZero(substring(r.school_year, 1, 4))"
    year = "toYear(r.birth_date)"
    late = "(toMonth(r.birth_date), toDayOfMonth(r.birth_date)) > (9, 5)"
    columns = {
        "school_year": "r.school_year",
        "school_code": "r.school_code",
        "grade": "toUInt8(r.grade)",
        "student_key": _HMAC,
        "revision": "toUInt32(r.revision)",
        # Any change to any field changes ClickHouse's text of the record, so its hash.
        "content_hash": "lower(hex(SHA256(toString(r))))",
        "student_code": "r.student_code",
        "level": "toString(r.level)",
        "level_code": (
            f"transform(toString(r.level), {_strings(LEVELS)},"
            f" {_strings(tuple(LEVEL_CODES.values()))}, '')"
        ),
        "class_name": "r.class_name",
        "gender": "toString(r.gender)",
        "ethnicity_code": "r.ethnicity_code",
        "birth_year": f"toUInt16({year})",
        # Clamped: validation rejects implausible birth dates; UInt8 must not underflow.
        "age_at_year_start": f"toUInt8(greatest(0, {first} - {year} - ({late})))",
        "on_time_grade": f"{first} - {year} = r.grade + 5",
        "birth_province_code_2024": "substring(r.personal_id, 2, 2)",
        "school_name": "s.name",
        "school_type": "s.school_type",
        "province_code_2024": "s.province_code_2024",
        "province_name_2024": "p24.name",
        "province_code_2025": "s.province_code_2025",
        "province_name_2025": "p25.name",
        "learning_result": "toString(ifNull(r.learning_result, ''))",
        "conduct_result": "toString(ifNull(r.conduct_result, ''))",
        "promotion": "toString(ifNull(r.promotion, ''))",
        "completed_grade_programme": "r.completed_grade_programme",
        "completed_primary": "r.completed_primary",
        "disabled_not_assessed": "r.disabled_not_assessed",
        "days_absent": "toUInt16(greatest(0, r.days_absent))",
        "subject_codes": "r.subjects.subject_code",
        "subject_scores": "arrayMap(x -> toFloat32(x), r.subjects.score)",
        "subject_assessments": "arrayMap(x -> toString(ifNull(x, '')), r.subjects.assessment)",
        "personal_id": "if({keep_identity:Bool}, r.personal_id, NULL)",
        "full_name": "if({keep_identity:Bool}, r.full_name, NULL)",
    }
    assert tuple(columns) == tuple(name for name, _ in ENRICHED_COLUMNS)
    return columns


def staging_ddl(database: str, staging: str) -> str:
    """A Memory table: it holds one batch between staging and landing, nothing durable, so
    it is replaced at every start (a new version may stage other columns)."""
    columns = ", ".join(f"`{name}` {ch_type}" for name, ch_type in STAGE_COLUMNS)
    return f"CREATE OR REPLACE TABLE `{database}`.`{staging}` ({columns}) ENGINE = Memory"


def stage_sql(database: str, staging: str, source: str) -> str:
    """Stage a batch: `source` is the store's way to read the container (`file(…)` on chDB,
    `input(…)` on a server); `{senders:Array(String)}` holds each message's sender."""
    department = "{senders:Array(String)}[m + 1]"
    authorised = (
        "s.code = '' OR d.province_code"
        " = if(d.edition = 2024, s.province_code_2024, s.province_code_2025)"
    )
    staged = {
        "m": "m",
        "idx": "toUInt32(idx - 1)",
        # Avro strings are UTF-8, and Python's decoder refuses the payload otherwise: such a
        # record must not land, nor its bytes reach Python as text.
        "code": f"if(isValidUTF8(toString(r)), {validation_sql()}, '{Reason.DECODE_MALFORMED}')",
        "authorised": authorised,
        "department_province": "d.province_code",
        **_enriched(),
    }
    assert tuple(staged) == tuple(name for name, _ in STAGE_COLUMNS)
    db = f"`{database}`"
    return (
        f"INSERT INTO {db}.`{staging}` ({', '.join(staged)})"
        f" SELECT {', '.join(staged.values())}"
        f" FROM (SELECT toUInt32(m) AS m, records FROM {source}) AS batch"
        " ARRAY JOIN records AS r, arrayEnumerate(records) AS idx"
        f" LEFT JOIN {db}.schools AS s ON s.code = r.school_code"
        f" LEFT JOIN {db}.provinces AS p24 ON p24.edition = 2024"
        " AND p24.code = s.province_code_2024"
        f" LEFT JOIN {db}.provinces AS p25 ON p25.edition = 2025"
        " AND p25.code = s.province_code_2025"
        f" LEFT JOIN {db}.departments AS d ON d.code = {department}"
        # Short-circuit evaluation of multiIf costs more than it saves with these lambdas
        # (validation alone: 58k → 104k rows/s here). The text of a record renders its
        # DateTime64 in the session's zone: UTC, so that its hash (which decides duplicates
        # and revision conflicts) is the same on every server and process.
        " SETTINGS short_circuit_function_evaluation = 'disable', join_use_nulls = 0,"
        " session_timezone = 'UTC'"
    )


_KEY = ", ".join(RECORD_KEY)


def token_sql() -> str:
    """`rows.dedup_token` of a group of staged records, as an aggregate (a test holds the two
    to the same value): sorted byte-wise, as Python sorts their code points."""
    fields = (*RECORD_KEY, "revision", "content_hash")  # those of `rows.dedup_token`
    entry = ", '\\x1F', ".join(f"toString({name})" for name in fields)
    return f"lower(hex(SHA256(arrayStringConcat(arraySort(groupArray(concat({entry}))), '\\x1E'))))"


def summary_sql(database: str, staging: str) -> str:
    """Per staged message: its records, those failing a rule or outside the sender's
    province, those whose key is contested (already landed, or staged more than once in the
    batch), and the dedup token of all its records.

    A message with none failed, outside or contested lands every record as new, which is
    what landing decides for almost every message: its rows need not leave ClickHouse.
    """
    db = f"`{database}`"
    staged_keys = f"SELECT {_KEY} FROM {db}.`{staging}`"
    # GLOBAL: on a cluster `records` is Distributed, and the staging table exists only on the
    # node this store talks to; the keys are sent to the shards with the query.
    landed = f"SELECT {_KEY} FROM {db}.`records` WHERE ({_KEY}) GLOBAL IN ({staged_keys})"
    repeated = f"{staged_keys} GROUP BY {_KEY} HAVING count() > 1"
    return (
        "SELECT m, count() AS records, countIf(code != '') AS failed,"
        " countIf(NOT authorised) AS outside,"
        f" countIf(({_KEY}) IN ({landed}) OR ({_KEY}) IN ({repeated})) AS contested,"
        f" {token_sql()} AS token"
        f" FROM {db}.`{staging}` GROUP BY m ORDER BY m"
    )


def staged_sql(database: str, staging: str, some: bool = False) -> str:
    """What landing decides on, per staged record in batch order (with `some`, only those of
    the messages in `{messages:Array(UInt32)}`), with what is already landed under its key
    (revision 0 when nothing): the dedupe lookup is a join here, over the primary key of
    `records`, instead of a query with the batch's keys as parameters. Key text that is not
    UTF-8 (its record is `decode.malformed`) is made readable, so Python can decode it."""
    db = f"`{database}`"
    where = " WHERE m IN {messages:Array(UInt32)}" if some else ""
    text = "toValidUTF8(school_year) AS school_year, toValidUTF8(school_code) AS school_code"
    staged = f"(SELECT * REPLACE ({text}) FROM {db}.`{staging}`{where})"
    return (
        "SELECT m, idx, code, authorised, department_province, school_year, school_code,"
        " grade, student_key, revision, content_hash, landed_revision, landed_hash"
        f" FROM {staged} AS staged"
        f" LEFT JOIN (SELECT {_KEY}, max(revision) AS landed_revision,"
        " argMax(content_hash, revision) AS landed_hash"
        f" FROM {db}.`records` WHERE ({_KEY}) GLOBAL IN (SELECT {_KEY} FROM {staged})"
        f" GROUP BY {_KEY}) AS landed USING ({_KEY})"
        " ORDER BY m, idx SETTINGS join_use_nulls = 0"
    )


def staged_request(
    database: str, staging: str, messages: Sequence[int] | None
) -> tuple[str, dict[str, Any]]:
    """`staged_sql` and its parameters: every staged message, or those in `messages`."""
    if messages is None:
        return staged_sql(database, staging), {}
    return staged_sql(database, staging, some=True), {"messages": list(messages)}


def land_sql(database: str, staging: str, subset: bool) -> str:
    """Insert the staged records, each with its message's landing columns (arrays indexed by
    the message's position); with `subset`, only those at `{positions:Array(UInt64)}`
    (m × 2³² + idx). Usually every record lands, and the filter would cost a quarter of
    the insert."""
    landing = {
        "submission_id": "{submission_ids:Array(String)}[m + 1]",
        "sender_code": "{senders:Array(String)}[m + 1]",
        "vendor": "{vendors:Array(String)}[m + 1]",
        "sent_at": "fromUnixTimestamp64Milli({sent_at_ms:Array(Int64)}[m + 1], 'UTC')",
        "kafka_partition": "{partitions:Array(UInt16)}[m + 1]",
        "kafka_offset": "{offsets:Array(UInt64)}[m + 1]",
        "landed_at": "now64(3, 'UTC')",
    }
    assert tuple(landing) == tuple(name for name, _ in LANDING_COLUMNS)
    enriched = ", ".join(f"`{name}`" for name, _ in ENRICHED_COLUMNS)
    columns = ", ".join(f"`{name}`" for name, _ in RECORD_COLUMNS)
    where = (
        " WHERE bitShiftLeft(toUInt64(m), 32) + idx"
        " IN (SELECT arrayJoin({positions:Array(UInt64)}))"
        if subset
        else ""
    )
    return (
        f"INSERT INTO `{database}`.`records` ({columns})"
        f" SELECT {enriched}, {', '.join(landing.values())}"
        f" FROM `{database}`.`{staging}`{where}"
    )


def position(m: int, idx: int) -> int:
    return (m << 32) + idx
