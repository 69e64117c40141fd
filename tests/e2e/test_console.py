"""/console end to end: Debian's chromium, driven by Selenium through Debian's chromedriver, against
the real API and workers. Signing in, a CSV received and watched until its job ends, the new stock
found, a batch's failed line, the live queue charts, reconcile; and what must be refused: a key that
is not valid, a POST without the session's CSRF token, another warehouse's stock for a key limited
to its own. Screenshots of each page are kept in var/test-artifacts/console/.
"""

import csv
import io
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from shared.api_keys import create_key
from shared.db import session_scope
from tests.e2e.conftest import make_key
from tests.support.processes import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "var" / "test-artifacts" / "console"
TERMINAL = ("succeeded", "failed", "partially_failed")
FLAKY = (NoSuchElementException, StaleElementReferenceException)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    for program in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(program), f"{program} is missing: apt-get install chromium chromium-driver " \
                                      "(bin/test installs them)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     # No network: every host name fails to resolve; the API is reached by address.
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _shot(browser: webdriver.Chrome, name: str) -> None:
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _wait(browser: webdriver.Chrome, condition, timeout: float = 30):  # type: ignore[no-untyped-def]
    return WebDriverWait(browser, timeout, ignored_exceptions=FLAKY).until(condition)


def _text(browser: webdriver.Chrome, css: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text


def sign_in(browser: webdriver.Chrome, api_url: str, key: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{api_url}/console/stock")
    _wait(browser, lambda d: d.current_url.endswith("/console/login"))
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser, lambda d: d.current_url.endswith("/console/stock"))


def _catalog(client: httpx.Client, warehouses: list[str], skus: list[str]) -> None:
    for code in warehouses:
        assert client.post("/v1/warehouses", json={"code": code, "name": code}).status_code == 201
    for sku in skus:
        assert client.post("/v1/products", json={"sku": sku, "name": sku}).status_code == 201


def _key_of(auth: dict[str, str]) -> str:
    return auth["Authorization"].removeprefix("Bearer ")


def _names() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:6].upper()
    return f"CW-{tag}", f"CB-{tag}", f"CS-{tag}"


def test_a_key_that_is_not_valid_is_refused(api_url, browser):
    browser.delete_all_cookies()
    browser.get(f"{api_url}/console/queues")
    _wait(browser, lambda d: d.current_url.endswith("/console/login"))  # no session: the login form
    browser.find_element(By.ID, "key").send_keys("sk_000000000000_not-a-real-secret")
    browser.find_element(By.ID, "sign-in").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "login-error"))
    assert "not valid" in _text(browser, "#login-error")
    assert browser.current_url.endswith("/console/login")
    assert browser.get_cookie("stock_console") is not None  # the login form's session, without a key
    browser.get(f"{api_url}/console/stock")
    assert browser.current_url.endswith("/console/login")
    _shot(browser, "login-refused")


def test_receive_a_csv_watch_it_land_and_find_the_new_stock(api_url, workers, client, auth, browser,
                                                            tmp_path: Path):
    warehouse, _, sku = _names()
    _catalog(client, [warehouse], [sku, f"{sku}-2"])
    sign_in(browser, api_url, _key_of(auth))
    cookie = browser.get_cookie("stock_console")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    assert _key_of(auth) not in cookie["value"]

    upload = tmp_path / "receipts.csv"
    upload.write_text(f"warehouse,sku,quantity,reference\n{warehouse},{sku},40,po-1\n"
                      f"{warehouse},{sku}-2,7,po-1\n{warehouse},NO-SUCH-{sku},3,po-1\n")
    browser.get(f"{api_url}/console/receiving")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    browser.find_element(By.ID, "check").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "lines"))
    verdicts = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#lines td.verdict")]
    assert verdicts[:2] == ["ok", "ok"] and "unknown SKU" in verdicts[2]
    _shot(browser, "receiving-checked")

    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda d: re.search(r"/console/jobs/[0-9a-f-]{36}$", d.current_url))
    job_id = browser.current_url.rsplit("/", 1)[1]
    _shot(browser, "job-progress")
    _wait(browser, lambda d: _text(d, "#job-status") in TERMINAL)
    assert _text(browser, "#job-status") == "partially_failed"
    assert (_text(browser, "#succeeded"), _text(browser, "#failed")) == ("2", "1")
    assert browser.find_element(By.ID, "progress-bar").get_attribute("value") == "100"
    rows = browser.find_elements(By.CSS_SELECTOR, "#failed-lines tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows] == ["unknown-sku"]
    _shot(browser, "job-finished")

    # The failed lines as CSV, with the session cookie the browser holds.
    failed = httpx.get(browser.find_element(By.ID, "failed-csv").get_attribute("href"), timeout=30,
                       cookies={"stock_console": browser.get_cookie("stock_console")["value"]})
    assert failed.status_code == 200 and failed.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(failed.text)))
    assert [(r["line"], r["warehouse"], r["sku"], r["quantity"], r["problem"]) for r in lines] == [
        ("2", warehouse, f"NO-SUCH-{sku}", "3", "unknown-sku")]

    browser.get(f"{api_url}/console/stock")
    browser.find_element(By.ID, "warehouse").send_keys(warehouse)
    browser.find_element(By.ID, "search").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#levels tbody tr"))
    found = {row.get_attribute("data-sku"): row.find_element(By.CSS_SELECTOR, ".on-hand").text
             for row in browser.find_elements(By.CSS_SELECTOR, "#levels tbody tr")}
    assert found == {sku: "40", f"{sku}-2": "7"}
    _shot(browser, "stock-search")

    browser.find_element(By.LINK_TEXT, sku).click()
    _wait(browser, lambda d: d.find_elements(By.ID, "history-chart"))
    assert (_text(browser, "#on-hand"), _text(browser, "#reserved"), _text(browser, "#available")) == \
        ("40", "0", "40")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#history-chart svg path")) == 2
    ledger = browser.find_elements(By.CSS_SELECTOR, "#ledger tbody tr")
    assert len(ledger) == 1 and job_id[:8] in ledger[0].text and "po-1" in ledger[0].text
    _shot(browser, "stock-level")


def test_the_jobs_page_finds_a_batch_and_shows_its_failed_line(api_url, workers, client, auth, browser):
    warehouse, _, sku = _names()
    _catalog(client, [warehouse], [sku])
    answer = client.post("/v1/batches", headers={"Prefer": "wait=20"}, json={
        "mode": "independent", "commands": [
            {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5},
            {"type": "issue", "warehouse": warehouse, "sku": sku, "quantity": 500}]})
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["job_id"]
    sign_in(browser, api_url, _key_of(auth))
    browser.get(f"{api_url}/console/jobs")
    browser.find_element(By.ID, "job-id").send_keys(job_id)
    browser.find_element(By.ID, "look-up").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "failed-lines"))
    assert _text(browser, "#job-status") == "partially_failed"
    cells = browser.find_elements(By.CSS_SELECTOR, "#failed-lines tbody td")
    assert [cells[0].text, cells[1].text] == ["1", "insufficient-stock"]
    _shot(browser, "job-failed-line")
    # Another key's job is not found, as in the API.
    sign_in(browser, api_url, make_key({"read"}, "console-other"))
    browser.get(f"{api_url}/console/jobs/{job_id}")
    assert "404" in _text(browser, "h1")


def test_the_queues_page_draws_live_charts(api_url, workers, auth, browser):
    sign_in(browser, api_url, _key_of(auth))
    browser.get_log("browser")  # what earlier pages logged
    browser.get(f"{api_url}/console/queues")
    assert browser.find_elements(By.CSS_SELECTOR, "#shards tbody tr")
    # Drawn at once, then again at each refresh: two samples or more in every chart.
    for chart in ("chart-depth", "chart-age", "chart-rate", "chart-failed"):
        _wait(browser, lambda d, c=chart: int(d.find_element(By.ID, c).get_attribute("data-samples") or 0)
              >= 2, timeout=20)
        assert browser.find_elements(By.CSS_SELECTOR, f"#{chart} path")
    _shot(browser, "queues")
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []


def test_reconcile_shows_the_books_balance_to_an_admin_only(api_url, workers, browser):
    sign_in(browser, api_url, make_key({"read"}, "console-reader"))
    assert not browser.find_elements(By.LINK_TEXT, "Reconcile")
    browser.get(f"{api_url}/console/reconcile")
    assert "403" in _text(browser, "h1")
    sign_in(browser, api_url, make_key({"admin"}, "console-admin"))
    browser.find_element(By.LINK_TEXT, "Reconcile").click()
    browser.find_element(By.ID, "run").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "verdict"))
    assert _text(browser, "#verdict") == "OK: the books balance."
    _shot(browser, "reconcile")


def _signed_in_client(api_url: str, key: str, **kwargs) -> tuple[httpx.Client, str]:  # type: ignore[no-untyped-def]
    """An HTTP client with a console session, and the session's CSRF token."""
    http = httpx.Client(base_url=api_url, timeout=30, **kwargs)
    token = re.search(r'name="csrf" value="([^"]+)"', http.get("/console/login").text).group(1)
    answer = http.post("/console/login", data={"csrf": token, "key": key})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/stock"
    page = http.get("/console/stock")
    return http, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_a_post_without_the_sessions_csrf_token_is_refused(api_url, workers):
    key = make_key({"admin"}, "console-csrf")
    http, token = _signed_in_client(api_url, key)
    with closing(http):
        for form in ({}, {"csrf": ""}, {"csrf": "x" * 43}):
            refused = http.post("/console/reconcile", data=form)
            assert refused.status_code == 403 and "CSRF" in refused.text
            upload = http.post("/console/receiving/check", data=form, files={"file": ("a.csv", b"A,B,1\n")})
            assert upload.status_code == 403
        assert http.post("/console/logout").status_code == 403
        assert http.post("/console/reconcile", data={"csrf": token}).status_code == 200
        # A token from before the sign-in is worth nothing after it.
        fresh = httpx.get(f"{api_url}/console/login", timeout=30)
        before = re.search(r'name="csrf" value="([^"]+)"', fresh.text).group(1)
        assert http.post("/console/reconcile", data={"csrf": before}).status_code == 403
        # The JSON endpoints answer problems.
        anonymous = httpx.get(f"{api_url}/console/api/queues", timeout=30)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert http.post("/console/logout", data={"csrf": token}).status_code == 303
        assert http.get("/console/stock").status_code == 303  # signed out


def test_the_cookie_is_secure_behind_https(api_url, workers):
    """uvicorn takes the scheme from X-Forwarded-Proto sent by a trusted proxy (127.0.0.1 here)."""
    answer = httpx.get(f"{api_url}/console/login", headers={"X-Forwarded-Proto": "https"}, timeout=30)
    cookie = answer.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in httpx.get(f"{api_url}/console/login", timeout=30).headers["set-cookie"].lower()


def test_a_key_limited_to_warehouses_sees_only_their_stock(api_url, workers, client, browser):
    own, other, sku = _names()
    _catalog(client, [own, other], [sku])
    for warehouse in (own, other):
        answer = client.post("/v1/commands", headers={"Prefer": "wait=20"}, json={
            "type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 9})
        assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    with session_scope() as session:
        limited = create_key(session, name="console-limited", scopes=frozenset({"read", "write"}),
                             warehouses=frozenset({own}))
    sign_in(browser, api_url, limited)
    browser.get(f"{api_url}/console/stock?sku={sku}")
    shown = {row.get_attribute("data-warehouse")
             for row in browser.find_elements(By.CSS_SELECTOR, "#levels tbody tr")}
    assert shown == {own}
    _shot(browser, "limited-key-stock")
    browser.get(f"{api_url}/console/stock?warehouse={other}")
    assert browser.find_elements(By.ID, "no-levels")
    browser.get(f"{api_url}/console/stock/{other}/{sku}")
    assert "404" in _text(browser, "h1")
    # Nor may it receive there: the check refuses the line, and nothing can be sent.
    http, token = _signed_in_client(api_url, limited)
    with closing(http):
        checked = http.post("/console/receiving/check", data={"csrf": token},
                            files={"file": ("r.csv", f"{other},{sku},5\n".encode())})
    assert checked.status_code == 422 and "not limited to the warehouse" in checked.text
    assert 'id="submit"' not in checked.text
