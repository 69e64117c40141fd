"""The job writer's INSERT statements stay small enough for the server's packet limit and each is
all or nothing (api/accept/writer.py `_by_size`)."""

import asyncio

from api.accept.writer import MAX_INSERT_BYTES, Submission, _by_size


def _submission(loop: asyncio.AbstractEventLoop, lines: int = 0) -> Submission:
    payload = {"commands": [{"type": "receive"}] * lines} if lines else {"type": "receive"}
    return Submission("job", None, "batch" if lines else "command", "atomic" if lines else None, payload, 0,
                      lines or 1, None, None, loop=loop)


def test_commands_share_a_statement_and_a_large_batch_goes_alone_in_order():
    loop = asyncio.new_event_loop()
    try:
        commands = [_submission(loop) for _ in range(30)]
        big = _submission(loop, lines=10_000)
        more = [_submission(loop) for _ in range(3)]
        chunks = _by_size([*commands, big, *more])
    finally:
        loop.close()
    assert chunks == [commands, [big], more]


def test_many_medium_batches_are_split_under_the_limit():
    loop = asyncio.new_event_loop()
    try:
        batches = [_submission(loop, lines=2_000) for _ in range(10)]
        chunks = _by_size(batches)
    finally:
        loop.close()
    assert [s for chunk in chunks for s in chunk] == batches
    assert len(chunks) > 1
    assert all(sum(len(s.payload["commands"]) for s in chunk) * 120 <= MAX_INSERT_BYTES or len(chunk) == 1
               for chunk in chunks)
