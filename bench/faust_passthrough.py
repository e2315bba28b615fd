"""Faust's own per-message ceiling: an agent that only counts, on the bench's input topic.

Run by bench/run.py as a separate process (Faust owns its event loop), pinned to the CPU it
is given (a fifth argument) before Faust starts a thread; prints one JSON line with the
messages/s between the first and the last event.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import faust


def main(bootstrap: str, topic: str, expected: int, port: int) -> None:
    app = faust.App(
        f"bench-passthrough-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_port=port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        broker_session_timeout=2.0,
        broker_heartbeat_interval=0.5,
        consumer_auto_offset_reset="earliest",
    )
    source = app.topic(
        topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    seen = {"n": 0, "first": 0.0}

    @app.agent(source)
    async def count(stream: Any) -> None:
        async for _ in stream:
            if seen["n"] == 0:
                seen["first"] = time.perf_counter()
            seen["n"] += 1
            if seen["n"] == expected:
                elapsed = time.perf_counter() - seen["first"]
                print(
                    json.dumps({"messages": expected, "per_s": expected / max(elapsed, 1e-9)}),
                    flush=True,
                )  # the bench reads this line and then stops the process

    faust.Worker(
        app, loglevel="error", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    if len(sys.argv) > 5:
        os.sched_setaffinity(0, {int(sys.argv[5])})
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
