"""/docs (Swagger UI) and /redoc (ReDoc), with every script, style sheet and image from the service.

The assets come from fastapi-offline, which bundles Swagger UI's and ReDoc's: the pages work with no
internet access, and the page where users paste their key runs no script fetched from a CDN. A
Content-Security-Policy keeps it so: scripts from the service only (and Swagger UI's one inline
start-up script, by its hash), connections to the service only, so a script could not send the key
elsewhere, and no images from elsewhere (ReDoc would otherwise fetch its maker's logo from a CDN).
"""

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
# No validator badge: Swagger UI would ask a public validator about the document.
SWAGGER_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


def _policy(inline_script: str | None) -> str:
    script = "'self'"
    if inline_script is not None:
        digest = base64.b64encode(hashlib.sha256(inline_script.encode()).digest()).decode()
        script += f" 'sha256-{digest}'"
    return (f"default-src 'none'; script-src {script}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
            "worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()  # an HTMLResponse's body is bytes; Starlette allows a memoryview
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    page.headers["Content-Security-Policy"] = _policy(inline[0] if inline else None)
    return page


def install(app: FastAPI) -> None:
    """Serve the assets and the two pages (the app is made with docs_url and redoc_url None)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")
    title, openapi_url = app.title, app.openapi_url or "/openapi.json"
    swagger = _with_policy(get_swagger_ui_html(
        openapi_url=openapi_url, title=f"{title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png", swagger_ui_parameters=SWAGGER_PARAMETERS))
    redoc = _with_policy(get_redoc_html(
        openapi_url=openapi_url, title=f"{title} - ReDoc", redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PATH}/favicon.png", with_google_fonts=False))

    # The pages never change while the process runs: made once, answered as they are.
    @router.get("/docs")
    def docs() -> HTMLResponse:
        return HTMLResponse(swagger.body, headers={"Content-Security-Policy":
                                                   swagger.headers["Content-Security-Policy"]})

    @router.get("/redoc")
    def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc.body, headers={"Content-Security-Policy":
                                                 redoc.headers["Content-Security-Policy"]})

    app.include_router(router)
