"""The API process: `uvicorn api.main:app`."""

from typing import Any

from fastapi import FastAPI

from api import problems
from api.body_limit import BodySizeLimit
from api.routes import catalog, commands, health, jobs, stock
from shared.settings import get_settings


def create_app() -> FastAPI:
    app = FastAPI(title="Stock command service", version="1.0.0",
                  description="Stock commands are queued and applied exactly once; see README.")
    problems.install(app)
    for module in (health, catalog, stock, commands, jobs):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI builds and caches the document once; the error responses are added to it once.
        spec = generate_openapi()
        if "Problem" not in spec.get("components", {}).get("schemas", {}):
            problems.document_errors(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
