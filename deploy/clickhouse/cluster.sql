-- hocba on a ClickHouse cluster: Replicated* tables on every shard, Distributed tables on top.
--
-- The names the workers and analysts use (records, submissions, dead_letters, progress, the
-- reference tables and the statistics views) stay the same as on one server
-- (src/hocba/store/schema.py, src/hocba/stats/views.py): a worker's start-up
-- `CREATE … IF NOT EXISTS` then finds them and creates nothing. So apply this file BEFORE the
-- first worker starts, once, on any node:
--
--   clickhouse-client --host ch-0 --user admin --password … --multiquery < deploy/clickhouse/cluster.sql
--
-- Needs: a cluster in remote_servers with internal_replication = true, ClickHouse Keeper, and
-- the macros {cluster}, {shard}, {replica} on every node (the Altinity operator defines them).
-- Layout: at national scale (~18 M year-end records, ×2–3 with corrections: tens of GB)
-- ONE shard with 2–3 replicas is enough; the Distributed tables let a shard be added later.
--
-- Why each engine:
-- * records_local: ReplicatedReplacingMergeTree(revision) with the single-server ORDER BY, so a
--   correction (higher revision) replaces the row under FINAL. Sharding by school_code keeps
--   every record key on one shard, so FINAL, the dedupe lookups and the MV stay exact.
--   Replicated tables deduplicate repeated insert blocks (insert_deduplication_token) by
--   default; the window is raised to the single server's 10,000 inserts.
-- * submissions, dead_letters: append-only audit logs, Replicated and sharded.
-- * reference tables: small and replaced wholesale (ALTER TABLE … REPLACE PARTITION from a
--   scratch table on the worker's node: atomic and replicated): one Keeper path for all
--   shards, so every node holds the full copy the views join with.
-- * progress: the incremental aggregate of records, maintained per shard by progress_mv;
--   uniqExact states merge exactly across shards.
--
-- The workers insert through the Distributed tables with distributed_foreground_insert = 1
-- (set per insert), so a batch is acknowledged, and its Kafka offset committed, only once
-- its shard has it. Sharding keys are deterministic and the local tables remember 10,000
-- block hashes, so an insert retried after a lost reply reaches the same shard and is
-- dropped there, as on a single server.

CREATE DATABASE IF NOT EXISTS hocba ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS hocba.records_local ON CLUSTER '{cluster}' (
    `school_year` LowCardinality(String),
    `school_code` String,
    `grade` UInt8,
    `student_key` String,
    `revision` UInt32,
    `content_hash` String,
    `student_code` String,
    `level` LowCardinality(String),
    `level_code` LowCardinality(String),
    `class_name` String,
    `gender` LowCardinality(String),
    `ethnicity_code` LowCardinality(String),
    `birth_year` UInt16,
    `age_at_year_start` UInt8,
    `on_time_grade` Bool,
    `birth_province_code_2024` LowCardinality(String),
    `school_name` String,
    `school_type` LowCardinality(String),
    `province_code_2024` LowCardinality(String),
    `province_name_2024` LowCardinality(String),
    `province_code_2025` LowCardinality(String),
    `province_name_2025` LowCardinality(String),
    `learning_result` LowCardinality(String),
    `conduct_result` LowCardinality(String),
    `promotion` LowCardinality(String),
    `completed_grade_programme` Bool,
    `completed_primary` Bool,
    `disabled_not_assessed` Bool,
    `days_absent` UInt16,
    `subject_codes` Array(String),
    `subject_scores` Array(Nullable(Float32)),
    `subject_assessments` Array(String),
    `personal_id` Nullable(String),
    `full_name` Nullable(String),
    `submission_id` String,
    `sender_code` LowCardinality(String),
    `vendor` LowCardinality(String),
    `sent_at` DateTime64(3, 'UTC'),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64,
    `landed_at` DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', revision)
PARTITION BY school_year
ORDER BY (school_year, school_code, grade, student_key)
SETTINGS replicated_deduplication_window = 10000, merge_selector_base = 10, index_granularity = 1024;

CREATE TABLE IF NOT EXISTS hocba.records ON CLUSTER '{cluster}' AS hocba.records_local
ENGINE = Distributed('{cluster}', hocba, records_local, cityHash64(school_code));

CREATE TABLE IF NOT EXISTS hocba.submissions_local ON CLUSTER '{cluster}' (
    `submission_id` String,
    `sender_code` LowCardinality(String),
    `vendor` LowCardinality(String),
    `signer_fingerprint` String,
    `topic` LowCardinality(String),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64,
    `outcome` LowCardinality(String),
    `reason` LowCardinality(String),
    `records_total` UInt32,
    `records_landed` UInt32,
    `records_duplicate` UInt32,
    `records_stale` UInt32,
    `records_failed` UInt32,
    `sent_at` DateTime64(3, 'UTC'),
    `received_at` DateTime64(3, 'UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(received_at)
ORDER BY (sender_code, received_at, submission_id)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS hocba.submissions ON CLUSTER '{cluster}' AS hocba.submissions_local
ENGINE = Distributed('{cluster}', hocba, submissions_local, cityHash64(submission_id));

CREATE TABLE IF NOT EXISTS hocba.dead_letters_local ON CLUSTER '{cluster}' (
    `submission_id` String,
    `sender_code` LowCardinality(String),
    `code` LowCardinality(String),
    `stage` LowCardinality(String),
    `detail` String,
    `record_errors` String,
    `topic` LowCardinality(String),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64,
    `failed_at` DateTime64(3, 'UTC'),
    `worker` LowCardinality(String),
    `original_size` UInt32
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(failed_at)
ORDER BY (code, failed_at)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS hocba.dead_letters ON CLUSTER '{cluster}' AS hocba.dead_letters_local
ENGINE = Distributed('{cluster}', hocba, dead_letters_local,
    cityHash64(topic, kafka_partition, kafka_offset));

-- provinces: reference data, a full copy on every node (one ZooKeeper path for all shards)
CREATE TABLE IF NOT EXISTS hocba.provinces ON CLUSTER '{cluster}' (
    `code` LowCardinality(String),
    `name` String,
    `edition` UInt16
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (edition, code);

-- province_mapping: reference data, a full copy on every node (one ZooKeeper path for all shards)
CREATE TABLE IF NOT EXISTS hocba.province_mapping ON CLUSTER '{cluster}' (
    `province_code_2024` LowCardinality(String),
    `province_code_2025` LowCardinality(String)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (province_code_2024);

-- schools: reference data, a full copy on every node (one ZooKeeper path for all shards)
CREATE TABLE IF NOT EXISTS hocba.schools ON CLUSTER '{cluster}' (
    `code` String,
    `name` String,
    `levels` Array(String),
    `school_type` LowCardinality(String),
    `province_code_2024` LowCardinality(String),
    `province_code_2025` LowCardinality(String),
    `commune_code` String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (code);

-- departments: reference data, a full copy on every node (one ZooKeeper path for all shards)
CREATE TABLE IF NOT EXISTS hocba.departments ON CLUSTER '{cluster}' (
    `code` String,
    `name` String,
    `edition` UInt16,
    `province_code` LowCardinality(String),
    `valid_from` Date,
    `valid_to` Nullable(Date),
    `account_registered` Bool,
    `certificate_approved` Bool
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (code);

-- expected_enrollment: reference data, a full copy on every node (one ZooKeeper path for all shards)
CREATE TABLE IF NOT EXISTS hocba.expected_enrollment ON CLUSTER '{cluster}' (
    `province_code_2024` LowCardinality(String),
    `school_year` LowCardinality(String),
    `grade` UInt8,
    `expected` UInt32
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')
ORDER BY (province_code_2024, school_year, grade);

CREATE TABLE IF NOT EXISTS hocba.progress_local ON CLUSTER '{cluster}' (
    school_year LowCardinality(String),
    province_code_2024 LowCardinality(String),
    province_code_2025 LowCardinality(String),
    grade UInt8,
    sender_code LowCardinality(String),
    record_keys AggregateFunction(uniqExact, String, UInt8, String),
    last_landed_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY school_year
ORDER BY (school_year, province_code_2024, province_code_2025, grade, sender_code);

CREATE TABLE IF NOT EXISTS hocba.progress ON CLUSTER '{cluster}' AS hocba.progress_local
ENGINE = Distributed('{cluster}', hocba, progress_local, rand());

-- Fed on each shard by the inserts into its own records_local (never through the Distributed
-- table), so every block is aggregated exactly where it is stored.
CREATE MATERIALIZED VIEW IF NOT EXISTS hocba.progress_mv ON CLUSTER '{cluster}' TO hocba.progress_local AS
SELECT school_year, province_code_2024, province_code_2025, grade, sender_code,
    uniqExactState(school_code, grade, student_key) AS record_keys,
    max(landed_at) AS last_landed_at
FROM hocba.records_local
GROUP BY school_year, province_code_2024, province_code_2025, grade, sender_code;

CREATE VIEW IF NOT EXISTS hocba.coverage ON CLUSTER '{cluster}' AS
SELECT school_year, province_code_2024, max(province_code_2025) AS province_code_2025,
    grade, transform(grade, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], ['PRIMARY', 'PRIMARY', 'PRIMARY', 'PRIMARY', 'PRIMARY', 'LOWER_SECONDARY', 'LOWER_SECONDARY', 'LOWER_SECONDARY', 'LOWER_SECONDARY', 'UPPER_SECONDARY', 'UPPER_SECONDARY', 'UPPER_SECONDARY'], '') AS level,
    sum(received) AS records, sum(enrolled) AS expected,
    if(expected = 0, NULL, round(toDecimal128(records, 6) * 100 / expected, 2)) AS coverage_pct,
    max(landed) AS last_landed_at
FROM (
    SELECT school_year, province_code_2024, province_code_2025, grade,
        uniqExactMerge(record_keys) AS received, toUInt64(0) AS enrolled,
        CAST(max(last_landed_at), 'Nullable(DateTime64(3, \'UTC\'))') AS landed
    FROM hocba.progress
    GROUP BY school_year, province_code_2024, province_code_2025, grade
    UNION ALL
    SELECT e.school_year, e.province_code_2024, m.province_code_2025, e.grade,
        toUInt64(0), sum(e.expected), CAST(NULL, 'Nullable(DateTime64(3, \'UTC\'))')
    FROM hocba.expected_enrollment AS e
    LEFT JOIN hocba.province_mapping AS m ON m.province_code_2024 = e.province_code_2024
    GROUP BY e.school_year, e.province_code_2024, m.province_code_2025, e.grade
)
GROUP BY school_year, province_code_2024, grade;

CREATE VIEW IF NOT EXISTS hocba.national_progress ON CLUSTER '{cluster}' AS
SELECT c.school_year AS school_year,
    count() AS departments_total,
    countIf(d.account_registered) AS departments_registered,
    countIf(d.certificate_approved) AS departments_with_approved_certificate,
    countIf((c.school_year, d.code) IN (
        SELECT school_year, sender_code FROM hocba.progress
        WHERE (school_year, grade) IN (SELECT school_year, grade FROM hocba.expected_enrollment)
    )) AS departments_sending,
    any(c.records) AS records, any(c.expected) AS expected,
    if(expected = 0, NULL, round(toDecimal128(records, 6) * 100 / expected, 2)) AS coverage_pct
FROM (
    SELECT school_year, sum(records) AS records, sum(expected) AS expected
    FROM hocba.coverage
    WHERE (school_year, grade) IN (SELECT school_year, grade FROM hocba.expected_enrollment)
    GROUP BY school_year
) AS c
CROSS JOIN hocba.departments AS d
WHERE d.valid_from <= toDate(concat(substring(c.school_year, 1, 4), '-09-05'))
    AND (d.valid_to IS NULL OR d.valid_to >= toDate(concat(substring(c.school_year, 1, 4), '-09-05')))
GROUP BY c.school_year;

CREATE VIEW IF NOT EXISTS hocba.freshness ON CLUSTER '{cluster}' AS
SELECT school_year, sender_code, max(last_landed_at) AS last_landed_at,
    uniqExactMerge(record_keys) AS records
FROM hocba.progress
GROUP BY school_year, sender_code;

CREATE VIEW IF NOT EXISTS hocba.outcomes ON CLUSTER '{cluster}' AS
SELECT school_year, province_code_2024, province_name_2024, province_code_2025,
    province_name_2025, level, grade, gender, ethnicity_code, school_type,
    learning_result, conduct_result, promotion, completed_grade_programme, completed_primary,
    count() AS records
FROM hocba.records FINAL
GROUP BY school_year, province_code_2024, province_name_2024, province_code_2025,
    province_name_2025, level, grade, gender, ethnicity_code, school_type,
    learning_result, conduct_result, promotion, completed_grade_programme, completed_primary;

CREATE VIEW IF NOT EXISTS hocba.dead_letters_by_reason ON CLUSTER '{cluster}' AS
SELECT code, stage, sender_code, count() AS messages, max(failed_at) AS last_failed_at
FROM hocba.dead_letters
GROUP BY code, stage, sender_code;

-- The workers' user: it creates the schema objects at start (all exist already: nothing
-- happens), stages each batch in Memory tables of its own (CREATE, TRUNCATE, DROP), inserts,
-- and replaces reference sets (a scratch table, then ALTER … REPLACE PARTITION). Create the
-- user first (CREATE USER hocba ON CLUSTER '{cluster}' IDENTIFIED BY '…'). Analysts and
-- Grafana get SELECT on hocba.* only.
GRANT ON CLUSTER '{cluster}' SELECT, INSERT, ALTER, CREATE TABLE, CREATE VIEW, DROP TABLE,
    TRUNCATE, SHOW TABLES ON hocba.* TO hocba;
GRANT ON CLUSTER '{cluster}' CREATE DATABASE ON hocba.* TO hocba;
GRANT ON CLUSTER '{cluster}' CREATE TEMPORARY TABLE ON *.* TO hocba;  -- GLOBAL IN's sets
