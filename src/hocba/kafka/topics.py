"""Create the pipeline's topics with the partition count scale-out relies on."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from hocba.kafka.clients import tool_admin
from hocba.kafka.producer import MAX_REQUEST_BYTES

COMPACTED: Mapping[str, str] = {"cleanup.policy": "compact"}
# Dead letters and hand-off items carry an input message and more. At a broker's default
# limit (1 MiB, also the input topic's) the dead letter of a message near that limit would be
# refused, and the worker would retry it as an outage, holding every later batch behind it.
LARGE_MESSAGES: Mapping[str, str] = {"max.message.bytes": str(MAX_REQUEST_BYTES)}


async def ensure_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    configs: Mapping[str, str] | None = None,
    replication: int = 1,
) -> None:
    """Create the missing ones; `configs` (e.g. `COMPACTED`) applies to those created here."""
    admin = tool_admin(bootstrap)
    try:
        await admin.start()  # inside: a broker that cannot be reached still gets a close()
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(n, partitions, replication, topic_configs=dict(configs or {}))
            for n in names
            if n not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(missing)
    finally:
        await admin.close()
