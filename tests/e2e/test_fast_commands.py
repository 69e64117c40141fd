"""The fast path for single commands (api/accept/fast_path.py) answers exactly as the route does.

A valid command without an Idempotency-Key is served by the fast path; the same command with a key
goes to the FastAPI route. Anything the fast path does not take reaches the route with its body,
also when the body came in several chunks.
"""

import re
from collections.abc import Iterator

import httpx
import pytest

from shared.api_keys import revoke_key
from tests.e2e.conftest import make_key
from tests.support.client import create_catalog, unique, wait_for_jobs

JOB_LOCATION = re.compile(r"/v1/jobs/[0-9a-f-]{36}")


@pytest.fixture(scope="module")
def known(api_url: str, workers: list, auth: dict[str, str]) -> dict[str, str]:
    names = {"warehouse": unique("FASTW"), "sku": unique("FASTS")}
    with httpx.Client(base_url=api_url, timeout=30, headers=auth) as c:
        create_catalog(c, [names["warehouse"]], [names["sku"]])
    return names


def receive(known: dict[str, str], quantity: int = 1) -> dict:
    return {"type": "receive", **known, "quantity": quantity}


def shape(r: httpx.Response) -> tuple:
    """What a client can rely on in a 202; ids and times differ from job to job."""
    body = r.json()
    location = r.headers["location"]
    return (r.status_code, r.headers["content-type"], JOB_LOCATION.fullmatch(location) is not None,
            location == f"/v1/jobs/{body['job_id']}", sorted(body), body["kind"], body["status"],
            "x-request-id" in r.headers, "idempotent-replayed" in r.headers)


def test_a_command_gets_the_same_202_from_the_fast_path_and_from_the_route(client, known):
    fast = client.post("/v1/commands", json=receive(known))
    routed = client.post("/v1/commands", json=receive(known), headers={"Idempotency-Key": unique("K")})
    assert shape(fast) == shape(routed) == (
        202, "application/json", True, True, ["job_id", "kind", "status", "submitted_at"], "command",
        "queued", True, False)
    jobs = wait_for_jobs(client, [fast.json()["job_id"], routed.json()["job_id"]])
    assert {job["status"] for job in jobs.values()} == {"succeeded"}


def chunks(body: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_a_body_in_chunks_is_read_whole_and_replayed_to_the_route_when_left_to_it(client, known):
    valid = httpx.Response(200, json=receive(known, 2)).content
    r = client.post("/v1/commands", content=chunks(valid), headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    assert wait_for_jobs(client, [r.json()["job_id"]])[r.json()["job_id"]]["status"] == "succeeded"

    invalid = httpx.Response(200, json={**receive(known), "quantity": 0}).content
    r = client.post("/v1/commands", content=chunks(invalid), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert [(e["loc"][0], e["loc"][-1]) for e in r.json()["errors"]] == [("body", "quantity")]


@pytest.mark.parametrize("case", ["no key", "read-only key", "unknown key", "bad json", "invalid",
                                  "form body"])
def test_what_the_fast_path_leaves_gets_the_routes_problem(api_url, workers, known, case):
    headers = {"Authorization": f"Bearer {make_key({'write'})}", "content-type": "application/json"}
    body = httpx.Response(200, json=receive(known)).content
    expected = 202
    if case == "no key":
        del headers["Authorization"]
        expected = 401
    elif case == "read-only key":
        headers["Authorization"] = f"Bearer {make_key({'read'})}"
        expected = 403
    elif case == "unknown key":
        headers["Authorization"] = "Bearer sk_nope_nope"
        expected = 401
    elif case == "bad json":
        body, expected = b'{"type": "receive", ', 400
    elif case == "invalid":
        body, expected = httpx.Response(200, json={**receive(known), "sku": ""}).content, 422
    elif case == "form body":
        headers["content-type"] = "application/x-www-form-urlencoded"
        expected = 422
    r = httpx.post(f"{api_url}/v1/commands", content=body, headers=headers, timeout=30)
    assert r.status_code == expected, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if expected == 401:
        assert r.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_is_refused_by_the_next_command(api_url, workers, known, db):
    key = make_key({"write"})
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.post(f"{api_url}/v1/commands", json=receive(known), headers=headers,
                      timeout=30).status_code == 202
    db.rollback()
    assert revoke_key(db, prefix=key.split("_", 2)[1])
    db.commit()
    r = httpx.post(f"{api_url}/v1/commands", json=receive(known), headers=headers, timeout=30)
    assert r.status_code == 401, r.text
    assert r.json()["type"] == "/problems/unauthorized"
