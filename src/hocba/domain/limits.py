"""Limits on what the workers read: what an envelope may carry, shared by the decode stage
that enforces them and the vendor's publisher that refuses, before sending, what the workers
would refuse; and how far a compressed Kafka batch may expand."""

from __future__ import annotations

MAX_CHAIN_LENGTH = 8  # certificates in one envelope's chain: a leaf, its CAs, maybe the root
# One certificate's DER. CAs here issue 1-2 KB certificates; a sender's 0.9 MB one with
# thousands of name attributes took ~0.7 s of a core to parse and name.
MAX_CERTIFICATE_BYTES = 16_384
# A Kafka batch, decompressed. Vendors' batches are a few MB at most (a class is ~40 KB of
# Avro, librdkafka batches up to 1 MB); a batch past this is read no further and
# dead-lettered, so that a few KB of zstd cannot ask for gigabytes.
MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024
# One Kafka record, decompressed, with its key and headers, where a worker does not say less:
# the largest whose dead letter, with our reason headers, the producers still send
# (`kafka.producer.MAX_REQUEST_BYTES`, 8 MiB).
MAX_RECORD_BYTES = 8 * 1024 * 1024 - 256 * 1024
