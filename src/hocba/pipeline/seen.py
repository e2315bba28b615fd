"""A bounded, in-process memory of landed submission ids (dedupe layer 1 without Faust).

Faust's changelog-backed table is the durable form of layer 1, but its recovery waits for
the changelog's log-end offset, which the embedded broker misreports (see
`hocba.kafka.lag.true_end_offsets`), so a restarted worker would stall. On the embedded
default this LRU stands in: it forgets on restart, which layer 2 (the landed-state lookup)
covers, and it never grows past `capacity`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, MutableMapping


class RecentlySeen(MutableMapping[bytes, bytes]):
    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, bytes] = OrderedDict()

    def __getitem__(self, key: bytes) -> bytes:
        value = self._items[key]
        self._items.move_to_end(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __delitem__(self, key: bytes) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
