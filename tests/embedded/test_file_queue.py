"""The embedded profile's broker folder, through kombu as Celery uses it."""

from pathlib import Path

from kombu import Connection, Exchange, Queue

from shared.file_queue import celery_options


def connection(folder: Path) -> Connection:
    options = celery_options(folder)
    return Connection("filesystem://", transport=options["broker_transport"],
                      transport_options=options["broker_transport_options"])


def test_messages_come_out_in_the_order_they_were_sent_and_whole(tmp_path):
    queue = Queue("stock.0", Exchange("stock.0"), routing_key="stock.0")
    with connection(tmp_path) as producer_conn:
        producer = producer_conn.Producer()
        # Hundreds of sends fall in the same millisecond, where kombu's own names sort at random.
        for i in range(300):
            producer.publish({"n": i}, exchange=queue.exchange, routing_key="stock.0",
                             declare=[queue], serializer="json")
    files = sorted(p.name for p in (tmp_path / "messages").iterdir())
    assert len(files) == 300 and all(name.endswith(".stock.0.msg") for name in files)

    received = []
    with connection(tmp_path) as consumer_conn:
        simple = consumer_conn.SimpleQueue(queue)
        for _ in range(300):
            message = simple.get(timeout=5)
            received.append(message.payload["n"])
            message.ack()
        simple.close()
    assert received == list(range(300))
    assert list((tmp_path / "messages").iterdir()) == []


def test_the_folders_are_made_on_first_use(tmp_path):
    folder = tmp_path / "not" / "there"
    with connection(folder) as conn:
        conn.default_channel  # noqa: B018  (opening the channel is the point)
    assert (folder / "messages").is_dir() and (folder / "control").is_dir()
