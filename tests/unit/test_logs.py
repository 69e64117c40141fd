"""JSON log lines: the context's ids on every line, extra fields kept, secrets masked."""

import json
import logging
import sys

from shared.logs import JsonFormatter, current, log_context


def _line(message: str, *args: object, secrets: tuple[str, ...] = (), **extra: object) -> dict:
    record = logging.LogRecord("worker.tasks", logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return json.loads(JsonFormatter(secrets).format(record))


def test_a_line_is_one_json_object_with_the_context_and_its_fields():
    with log_context(request_id="req-1"), log_context(job_id="job-1", batch_id=None):
        assert current("request_id") == "req-1"
        line = _line("job %s", "succeeded", kind="command", problem=None)
    assert line["message"] == "job succeeded"
    assert line["level"] == "INFO" and line["logger"] == "worker.tasks"
    assert line["time"].endswith("Z")
    assert line["request_id"] == "req-1" and line["job_id"] == "job-1" and line["kind"] == "command"
    assert "batch_id" not in line and "problem" not in line  # None is left out


def test_the_context_ends_with_its_block():
    with log_context(request_id="req-1"):
        pass
    assert current("request_id") is None
    assert "request_id" not in _line("outside")


def test_an_exception_is_kept_in_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("api", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]


def test_keys_tokens_url_passwords_and_the_pepper_are_masked():
    key = "sk_0123456789ab_" + "S3cr3t-value_" * 3
    line = _line("got %s with Bearer abc.def and mysql+pymysql://stock:hunter2@mysql:3306/stock, "
                 "pepper p3pp3r", key, secrets=("p3pp3r",), header=f"Authorization: Bearer {key}")
    text = json.dumps(line)
    assert "S3cr3t" not in text and "abc.def" not in text and "hunter2" not in text and "p3pp3r" not in text
    assert "sk_0123456789ab_[redacted]" in line["message"]  # the prefix still names the key


def test_a_password_only_url_is_masked():
    """Issue 18: `redis://:secret@host` was logged as it was (the mask wanted a user name)."""
    line = _line("broker at %s, backend at %s", "redis://:s3cret-pw@redis:6379/0",
                 "amqp://guest:hunter2@rabbit:5672//")
    assert "s3cret-pw" not in line["message"] and "hunter2" not in line["message"]
    assert "redis://:[redacted]@redis:6379/0" in line["message"]
    assert "amqp://guest:[redacted]@rabbit" in line["message"]
    assert _line("see http://example.invalid/a:b@c")["message"].startswith("see http://")
