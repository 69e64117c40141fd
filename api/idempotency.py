"""Idempotency-Key: the same key and body name the original job; another body under the key is 422.

MySQL is the store: a unique (api_key_id, idempotency_key) on the job row, written in the same
commit as the job, so two racing requests create one job and no cache can forget a key early.
The lookups and the retention rule live with the writer that commits jobs (`api/accept/writer.py`).
"""

import hashlib
import json
from typing import Annotated, Any

from fastapi import Header

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255,
                                              pattern=r"^[\x20-\x7e]+$")]


def fingerprint(kind: str, mode: str | None, payload: Any) -> str:
    canonical = json.dumps({"kind": kind, "mode": mode, "payload": payload}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
