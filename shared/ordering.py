"""Which jobs must be applied one after another, and which queue carries their wake-up.

Every job belongs to one of SLOT_COUNT ordering slots, by a hash of its first warehouse (a
transfer's source, a batch's first line). A worker applies a slot's jobs only while it holds that
slot's row in `apply_slot` locked, and always the oldest unfinished ones first (shared/drain.py),
so each warehouse's commands are applied in the order they were accepted, however many workers
run and whichever of them a message reaches.

The slot is fixed for a warehouse (SLOT_COUNT never changes: it is part of the schema); the queue a
wake-up goes to is not: it is the slot modulo SHARD_COUNT, and SHARD_COUNT may change at any time,
because a queue only says "look at these slots", never "in this order".
"""

import zlib

# Rows of `apply_slot`, made by migration 0003. Changing it would move warehouses between slots
# while their jobs wait: a new migration and a drained queue, never a setting.
SLOT_COUNT = 1024


def slot_for(warehouse_code: str) -> int:
    return zlib.crc32(warehouse_code.encode()) % SLOT_COUNT


def shard_for_slot(slot: int, shard_count: int) -> int:
    """The queue (stock.<shard>) that carries this slot's wake-ups."""
    return slot % shard_count
