"""Liveness, readiness and metrics; no API key needed."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SessionDep, StatusBoardDep
from api.metrics import exposition
from api.problems import not_found
from shared.settings import get_settings

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database and the status board answer")
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


@router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    """Prometheus text format. No key, like /healthz: with API_METRICS_PORT set it answers on that
    port only, which docker-compose.yml leaves unpublished (docs/operations.md). It shows counts
    and routes, never ids or keys."""
    port = get_settings().api_metrics_port
    if port and (request.scope.get("server") or ("", 0))[1] != port:
        raise not_found("This path")
    body, media_type = exposition()
    return Response(body, media_type=media_type)
