"""The OpenAPI document as /docs and client generators read it: every operation is tagged and
summarised, and every request body comes with examples that its own validation accepts."""

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.main import create_app

APP = create_app()
SPEC = APP.openapi()
OPERATIONS = [(method.upper(), path, operation) for path, item in SPEC["paths"].items()
              for method, operation in item.items()]


def _api_routes(routes: list[BaseRoute]) -> list[APIRoute]:
    """The app's routes, through the routers it includes (FastAPI keeps those as routes of their own)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _api_routes(route.original_router.routes)
    return found


BODY_ROUTES = [route for route in _api_routes(APP.routes)
               if route.include_in_schema and route.body_field is not None]


def test_the_document_lists_the_routes():
    assert len(OPERATIONS) >= 28
    assert len(BODY_ROUTES) >= 8


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS,
                         ids=[f"{method} {path}" for method, path, _ in OPERATIONS])
def test_every_operation_has_a_tag_and_a_summary(method, path, operation):
    assert operation.get("tags"), f"{method} {path} has no tag"
    declared = {tag["name"] for tag in SPEC.get("tags", [])}
    assert set(operation["tags"]) <= declared, f"{method} {path}: a tag without a description"
    summary = operation.get("summary", "")
    # FastAPI makes one from the function's name ("List Stock") when the route gives none.
    assert summary and not summary.istitle(), f"{method} {path} has no summary of its own"


@pytest.mark.parametrize(("method", "path", "operation"),
                         [o for o in OPERATIONS if "requestBody" in o[2]],
                         ids=[f"{m} {p}" for m, p, o in OPERATIONS if "requestBody" in o])
def test_every_request_body_has_an_example(method, path, operation):
    content = operation["requestBody"]["content"]["application/json"]
    assert content.get("examples") or "example" in content, f"{method} {path} has no example"


@pytest.mark.parametrize("route", BODY_ROUTES, ids=[f"{sorted(r.methods)[0]} {r.path}" for r in BODY_ROUTES])
def test_each_request_example_is_a_body_the_route_accepts(route):
    examples = route.body_field.field_info.openapi_examples or {}
    assert examples, f"{route.path} has no examples"
    for name, example in examples.items():
        _, errors = route.body_field.validate(example["value"], loc=("body",))
        assert not errors, f"{route.path} example {name!r}: {errors}"


def test_the_lists_name_their_items():
    for path in ("/v1/stock", "/v1/ledger", "/v1/warehouses", "/v1/products", "/v1/jobs/{job_id}/lines"):
        schema = SPEC["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        page = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert page["properties"]["items"]["items"], f"{path}: the items of a page are untyped"
