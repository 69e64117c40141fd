"""Which shard queue a warehouse's commands go to; pure, so tools can ask without loading settings."""

import zlib


def shard_for(warehouse_code: str, shard_count: int) -> int:
    """A stable shard per warehouse, so one consumer applies its commands in accepted order."""
    return zlib.crc32(warehouse_code.encode()) % shard_count
