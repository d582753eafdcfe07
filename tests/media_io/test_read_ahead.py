"""read_ahead keeps the order, reads one item ahead on another thread, and raises a read's error at its item."""

import threading

import pytest

from media_io.read_ahead import read_ahead


def test_items_come_in_order_with_the_next_read_running_on_another_thread():
    started: list[int] = []
    readers: set[int] = set()

    def read(item: int) -> int:
        started.append(item)
        readers.add(threading.get_ident())
        return item * 10

    seen = []
    for item, value in read_ahead([1, 2, 3, 4], read):
        assert value == item * 10
        assert max(started) <= item + 1  # never more than one item ahead
        seen.append(item)
    assert seen == [1, 2, 3, 4] and threading.get_ident() not in readers
    assert list(read_ahead([], read)) == []


def test_a_failed_read_is_raised_where_its_item_is_due():
    def read(item: int) -> int:
        if item == 3:
            raise ValueError("clip 3 is corrupt")
        return item

    got = []
    with pytest.raises(ValueError, match="clip 3"):
        for item, _ in read_ahead([1, 2, 3, 4], read):
            got.append(item)
    assert got == [1, 2]
