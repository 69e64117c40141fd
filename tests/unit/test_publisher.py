"""The publisher's latency-first merging and retries (api/accept/publisher.py), with a stand-in for the
broker: what reaches the real Redis broker is tested in tests/integration and tests/e2e."""

import threading
import time

from api.accept.publisher import Publisher


class Broker:
    """Records what is published; refuses while `down` is set; holds a publish while `slow` is set."""

    def __init__(self) -> None:
        self.messages: list[dict[int, list[int]]] = []
        self.down = threading.Event()
        self.slow = threading.Event()
        self.publishing = threading.Event()
        self.attempts = 0

    def publish(self, slots_by_shard: dict[int, list[int]]) -> None:
        self.attempts += 1
        self.publishing.set()
        while self.slow.is_set():
            time.sleep(0.01)
        if self.down.is_set():
            raise ConnectionError("broker away")
        self.messages.append(dict(slots_by_shard))


def wait_until(condition, timeout: float = 5) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_an_idle_publisher_sends_at_once():
    broker = Broker()
    publisher = Publisher(broker.publish)
    started = time.monotonic()
    publisher.submit({0: {4}})
    wait_until(lambda: broker.messages)
    assert time.monotonic() - started < 0.1, "no timer between a commit and its wake-up"
    assert broker.messages == [{0: [4]}]


def test_what_arrives_while_a_publish_is_under_way_goes_out_merged_with_the_next():
    broker = Broker()
    publisher = Publisher(broker.publish)
    broker.slow.set()
    publisher.submit({0: {2}})
    wait_until(broker.publishing.is_set)
    publisher.submit({0: {6, 2}, 1: {3}})
    publisher.submit({1: {5}, 0: {8}})
    broker.slow.clear()
    assert publisher.flush(timeout=5)
    assert broker.messages == [{0: [2]}, {0: [2, 6, 8], 1: [3, 5]}]


def test_a_refused_publish_is_retried_with_newer_slots_merged_and_health_says_so():
    broker = Broker()
    publisher = Publisher(broker.publish)
    broker.down.set()
    publisher.submit({0: {1}})
    wait_until(lambda: not publisher.healthy)
    publisher.submit({0: {2}, 1: {3}})
    time.sleep(0.3)  # a retry or two while the broker is away
    broker.down.clear()
    assert publisher.flush(timeout=10)
    assert publisher.healthy
    assert broker.attempts >= 2
    assert broker.messages == [{0: [1, 2], 1: [3]}]


def test_flush_returns_when_nothing_is_pending():
    publisher = Publisher(Broker().publish)
    started = time.monotonic()
    assert publisher.flush(timeout=5)
    assert time.monotonic() - started < 0.1
