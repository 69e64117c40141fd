"""The embedded profile's broker: kombu's filesystem transport, one file per message in a folder.

It needs no server, and the API, the worker and the job rows keep working exactly as with Redis.
Two things are changed from kombu's transport, both in how a message file is written:

- kombu writes the file in place, so a consumer listing the folder at that moment can claim it
  while it is still empty and lose the message (celery/kombu#1551). Here it is written under a
  name no consumer looks at and renamed into place, which is atomic: a message appears whole.
- Consumers take the files in sorted name order. kombu names them by milliseconds, so two messages
  sent in the same millisecond are taken in random order; nanoseconds, zero-padded so that they
  sort as numbers, keep each shard queue in the order the API sent its jobs.

Taking a message moves its file away: a worker killed after that loses the message, and the job
row (the durable record) is picked up by the recovery of the next worker to start
(worker/recovery.py), as a message lost by a Redis restart is in the server profile.
"""

import os
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# How often an idle worker looks for new message files (kombu's default is once a second).
POLLING_INTERVAL_SECONDS = 0.05
# This transport has no event loop, so the worker's timers (celery-batches' flush among them) run
# on a thread that sleeps up to this long between looks (Celery's default is a second), which
# would add up to a second to every command's latency.
TIMER_PRECISION_SECONDS = 0.02
# The subfolder of the queue folder that holds the message files of every queue.
MESSAGES = "messages"


class Channel(filesystem.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for folder in (self.data_folder_in, self.data_folder_out, self.control_folder):
            Path(folder).mkdir(parents=True, exist_ok=True)

    # The signature of kombu's filesystem Channel._put, which calls it; that one already differs
    # from the virtual base's (`payload` where the base says `message`), so mypy flags the override.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f"writing-{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def celery_options(folder: Path) -> dict[str, Any]:
    """Celery settings for a queue kept in `folder` (the API sends to it, workers read from it)."""
    messages = str(folder / MESSAGES)
    return {
        "broker_transport": f"{__name__}:Transport",
        "worker_timer_precision": TIMER_PRECISION_SECONDS,
        "broker_transport_options": {
            "data_folder_in": messages,
            "data_folder_out": messages,
            "control_folder": str(folder / "control"),
            "polling_interval": POLLING_INTERVAL_SECONDS,
        },
    }


def waiting_messages(folder: Path, queues: Sequence[str]) -> list[int]:
    """How many messages wait in each of `queues` (in that order): their files not yet taken by a
    consumer, matched by name as the transport matches them. A folder not made yet holds none."""
    try:
        names = os.listdir(folder / MESSAGES)
    except FileNotFoundError:
        names = []
    waiting = Counter(name.partition(".")[2] for name in names)
    return [waiting[f"{queue}.msg"] for queue in queues]
