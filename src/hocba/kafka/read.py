"""Read a topic from the start to its current end, as plain records.

Operators inspect and replay the dead-letter topic with it, tests check what landed there
(original bytes and reason headers), and the reference loader reads the compacted reference
topics; nothing is decoded by the reader. A batch that cannot be read comes as one stand-in
record (`kafka.fetch_reader`), which is said in the log: the reference loader, for one, skips
records without a key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hocba.domain.messages import UNREADABLE_BATCH_HEADER
from hocba.kafka.clients import tool_consumer
from hocba.kafka.lag import topic_partitions, true_end_offsets

log = logging.getLogger("hocba.kafka.read")


@dataclass(frozen=True, slots=True)
class TopicRecord:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]  # to read: ours are text, a vendor's shown with U+FFFD if not
    raw_headers: tuple[tuple[str, bytes], ...]  # as stored, for a replay to send unchanged


async def read_topic(bootstrap: str, topic: str) -> list[TopicRecord]:
    consumer = tool_consumer(bootstrap)
    try:
        await consumer.start()  # inside: a broker that cannot be reached still gets a stop()
        tps = await topic_partitions(consumer, topic)
        ends = await true_end_offsets(consumer, tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        out: list[TopicRecord] = []
        if not pending:
            return out
        consumer.assign(list(pending))
        await consumer.seek_to_beginning(*pending)
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in fetched.items():
                for r in records:
                    unreadable = dict(r.headers or ()).get(UNREADABLE_BATCH_HEADER)
                    if unreadable is not None:
                        log.warning(
                            "%s[%d] offset %d: %s",
                            topic,
                            tp.partition,
                            r.offset,
                            unreadable.decode("utf-8", "replace"),
                        )
                    if r.offset < ends[tp]:
                        out.append(
                            TopicRecord(
                                tp.partition,
                                r.offset,
                                r.timestamp,
                                r.key,
                                r.value or b"",
                                {k: v.decode("utf-8", "replace") for k, v in r.headers or ()},
                                tuple(r.headers or ()),
                            )
                        )
            for tp in list(pending):  # read to its end: a marker at the end is never returned
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return out
    finally:
        await consumer.stop()
