"""/docs and /redoc work with no internet access: a headless Chromium (Debian's, driven by Selenium
through Debian's chromedriver) that can resolve no host name renders them from the service's own
assets, and lists every route.

Finding of issue 18: /docs loaded Swagger UI from a CDN without integrity checks, so it was blank
with no internet access, and it is the page where users paste their key.
"""

import json
import shutil
from collections.abc import Iterator

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    for program in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(program), f"{program} is missing: apt-get install chromium chromium-driver " \
                                      "(bin/test installs them)"
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--no-first-run", "--disable-dev-shm-usage",
                     # No network: every host name fails to resolve; the API is reached by address.
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the page fetched since the last call (Chrome's performance log), but those the
    browser itself blocked before sending (the page's Content-Security-Policy)."""
    urls: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [url for request_id, url in urls.items() if request_id not in blocked]


def _routes(api_url: str) -> set[str]:
    spec = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    return {f"{method.upper()} {path}" for path, operations in spec["paths"].items() for method in operations}


def test_swagger_ui_renders_every_route_with_no_network(api_url, browser):
    browser.get(f"{api_url}/docs")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
    shown = {f"{block.find_element(By.CSS_SELECTOR, '.opblock-summary-method').text} "
             f"{block.find_element(By.CSS_SELECTOR, '.opblock-summary-path').get_attribute('data-path')}"
             for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")}
    assert shown == _routes(api_url)
    assert browser.find_elements(By.CSS_SELECTOR, ".authorize"), "no Authorize button for the key"
    requested = _requested_urls(browser)
    assert any(url.endswith("/openapi.json") for url in requested)
    assert [url for url in requested if not url.startswith(api_url)] == []


def test_redoc_renders_every_route_with_no_network(api_url, browser):
    browser.get(f"{api_url}/redoc")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']"))
    sections = {element.get_attribute("data-section-id")  # the menu and the page name each once
                for element in browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")}
    assert len(sections) == len(_routes(api_url))
    local = ("data:", "blob:", api_url)  # ReDoc's web worker is a blob
    assert [url for url in _requested_urls(browser) if not url.startswith(local)] == []


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_allow_scripts_and_connections_to_the_service_only(api_url, browser, page):
    """The page where users paste their key runs no script from elsewhere and sends nothing
    elsewhere; and the browser reports no content it refused (the policy fits the pages)."""
    policy = httpx.get(f"{api_url}{page}", timeout=30).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    browser.get_log("browser")  # what earlier pages logged
    browser.get(f"{api_url}{page}")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock, [data-section-id]"))
    refused = [entry["message"] for entry in browser.get_log("browser")
               if "Content Security Policy" in entry["message"]]
    # Only ReDoc's maker's logo, which it would fetch from a CDN (and which shows the log is read).
    expected = ["cdn.redoc.ly/redoc/logo-mini.svg"] if page == "/redoc" else []
    assert [next((u for u in expected if u in m), m) for m in refused] == expected, refused
