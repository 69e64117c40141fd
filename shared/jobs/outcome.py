"""How an applied job ended, as the apply path reports it to the worker and the job store."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    kind: str
    status: str
    api_key_id: int | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    submitted_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    already_applied: bool = False
    command_type: str = "batch"  # a command job's type (receive, issue, ...), for the metrics
    request_id: str | None = None  # the API request that accepted the job, for the log lines
