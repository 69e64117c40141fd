"""Liveness, readiness and metrics; no API key needed."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SessionDep, StatusBoardDep
from api.metrics import exposition

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(session: SessionDep, board: StatusBoardDep) -> JSONResponse:
    checks = {}
    try:
        session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    checks.update(board.readiness())  # Redis in the server profile
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus text format. No key, like /healthz: keep the port where only the monitoring
    network reaches it (docs/operations.md). It shows counts and routes, never ids or keys."""
    body, media_type = exposition()
    return Response(body, media_type=media_type)
