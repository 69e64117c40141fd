"""The publisher's coalescing and retries (api/publisher.py), with a stand-in for the broker: what
reaches the real Redis broker is tested in tests/e2e (test_outages.py and every job applied)."""

import threading
import time

from api.publisher import Publisher


class Broker:
    """Records what is published; refuses while `down` is set."""

    def __init__(self) -> None:
        self.messages: list[dict[int, list[str]]] = []
        self.request_ids: dict[str, str | None] = {}
        self.down = threading.Event()
        self.attempts = 0

    def publish(self, by_shard: dict[int, list[str]], request_ids: dict[str, str | None]) -> None:
        self.attempts += 1
        if self.down.is_set():
            raise ConnectionError("broker away")
        self.messages.append({shard: list(ids) for shard, ids in by_shard.items()})
        self.request_ids.update(request_ids)


def test_groups_submitted_within_the_interval_go_out_as_one_message_per_shard_in_order():
    broker = Broker()
    publisher = Publisher(0.2, broker.publish)
    publisher.submit({0: ["a1", "a2"], 1: ["b1"]}, {"a1": "r1", "a2": "r2", "b1": None})
    publisher.submit({0: ["a3"]}, {"a3": "r3"})
    assert publisher.flush(timeout=5)
    assert broker.messages == [{0: ["a1", "a2", "a3"], 1: ["b1"]}]
    assert broker.request_ids == {"a1": "r1", "a2": "r2", "b1": None, "a3": "r3"}


def test_a_refused_publish_is_retried_with_newer_jobs_behind_it_and_health_says_so():
    broker = Broker()
    publisher = Publisher(0, broker.publish)
    broker.down.set()
    publisher.submit({0: ["a1"]}, {})
    deadline = time.monotonic() + 5
    while publisher.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not publisher.healthy
    publisher.submit({0: ["a2"], 1: ["b1"]}, {})
    time.sleep(0.3)  # a retry or two while the broker is away
    broker.down.clear()
    assert publisher.flush(timeout=10)
    assert publisher.healthy
    assert broker.attempts >= 2
    assert broker.messages == [{0: ["a1", "a2"], 1: ["b1"]}]


def test_flush_returns_when_nothing_is_pending():
    publisher = Publisher(0.5, Broker().publish)
    started = time.monotonic()
    assert publisher.flush(timeout=5)
    assert time.monotonic() - started < 0.4, "a flush with nothing pending does not wait the interval"
