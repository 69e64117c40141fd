"""RFC 9457 problem details shared by the API (HTTP errors) and the worker (job errors)."""

from dataclasses import dataclass, field
from typing import Any

TITLES = {
    "insufficient-stock": "Insufficient stock",
    "stale-expectation": "Stale expectation",
    "unknown-warehouse": "Unknown warehouse",
    "unknown-sku": "Unknown SKU",
    "inactive-warehouse": "Inactive warehouse",
    "too-many-attempts": "Job abandoned after too many attempts",
    "validation-error": "Request is not valid",
    "malformed-json": "Body is not valid JSON",
    "not-found": "Not found",
    "conflict": "Conflict",
    "payload-too-large": "Payload too large",
    "unauthorized": "Missing or invalid API key",
    "forbidden": "API key lacks the scope",
    "forbidden-warehouse": "API key not limited to this warehouse",
    "headers-too-large": "Request header fields too large",
    "header-timeout": "Request headers too slow",
    "idempotency-key-mismatch": "Idempotency key reused with another body",
    "overloaded": "Service overloaded",
    "rate-limited": "Rate limit exceeded",
    "unavailable": "Dependency unavailable",
    "internal-error": "Internal error",
    "csrf-failed": "CSRF token missing or not valid",
}


@dataclass(frozen=True)
class Problem:
    """A problem type slug (`insufficient-stock`), its HTTP status, a detail and extra members."""

    slug: str
    status: int
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body = {
            "type": f"/problems/{self.slug}",
            "title": TITLES.get(self.slug, self.slug.replace("-", " ").capitalize()),
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body

    def at_line(self, line: int | None) -> "Problem":
        if line is None:
            return self
        return Problem(self.slug, self.status, self.detail, {**self.extra, "line": line})
