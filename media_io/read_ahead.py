"""Reading the next item on a second thread while this one is worked on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

Item = TypeVar("Item")
Read = TypeVar("Read")


def read_ahead(items: Sequence[Item], read: Callable[[Item], Read]) -> Iterator[tuple[Item, Read]]:
    """(item, read(item)) in order, `read` of the next item running on a second thread while the caller works on
    this one: decoders, FaceMesh and torch free the GIL, so the two overlap. One item ahead, so memory holds at
    most two reads; an error in `read` is raised where its item is due."""
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(read, items[0]) if items else None
        for index, item in enumerate(items):
            result = pending.result()
            if index + 1 < len(items):
                pending = reader.submit(read, items[index + 1])
            yield item, result
