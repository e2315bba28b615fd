"""A bounded in-process memory of landed submissions (DESIGN §5, dedupe layer 1).

Layer 1 remembers landed submission ids. Faust's changelog-backed table is its durable
form, but that table's recovery waits for the changelog's log-end offset, which the
embedded broker misreports (see `hocba.kafka.lag.true_end_offsets`), so a restarted worker
would stall; on the embedded default this LRU stands in. It forgets on restart, which the
store itself covers (layer 2 looks up what is landed under each staged record's key, layer
3 keeps the highest revision), and it never grows past `capacity`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator, MutableMapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentlySeen(MutableMapping[K, V]):
    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._items[key]
        self._items.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
