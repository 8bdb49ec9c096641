"""The search page in a real headless Chromium, against the API over a real engine.

The page at ``/`` is served by ``create_app(stack.system)`` under uvicorn (in a thread, on a free
port of 127.0.0.1) over the indexed sample catalogue. Chromium (Debian's ``chromium``, driven by
its ``chromedriver`` through selenium) types a query, sees three columns of cards whose photos
really load, sets a category filter and sees every column change to hits in that category. A
product whose title is HTML shows as text and runs nothing. A screenshot is kept in
``test-artifacts/search-page.png`` (ignored by git).

One engine is enough for a page that only calls ``/search`` (which every engine's tests cover):
this runs on OpenSearch alone.
"""
from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import uvicorn

from tests.integration.conftest import ROOT, Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without the background-networking switches Chromium's own connections (updates, sync, field
# trials) are refused over and over on a machine without internet access.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1500,1100")
ARTIFACTS = ROOT / "test-artifacts"
WAIT_S = 60  # the first query loads the model in the API process
QUERY = "black"
CATEGORY = "Footwear"
# A product whose title is markup: the page must show it as text and run none of it.
HOSTILE_ID = "page-test-markup"
HOSTILE_TITLE = 'Zyxwvut <img src=x onerror="window.__injected=1"> <b>qqqbold</b> sneaker'


@pytest.fixture(scope="session")
def browser_binaries() -> None:
    """Chromium, chromedriver and selenium are there; the test fails (not skips) otherwise.

    Session scope and listed first in the test, so a missing browser fails before the engines start.
    """
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `bash scripts/install.sh` "
                    "(it installs Debian's chromium and chromium-driver, and selenium into .venv)")


@pytest.fixture
def page_url(stack: Stack) -> Iterator[str]:
    """The API of ``stack.system`` served by uvicorn on a free port of 127.0.0.1."""
    from service.http import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(stack.system), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def driver(browser_binaries: None) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="acebert-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        chrome = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        try:
            yield chrome
        finally:
            chrome.quit()


@pytest.fixture
def hostile_product(stack: Stack) -> Iterator[None]:
    version = int(time.time() * 1000)
    result = stack.enqueue([{"type": "upsert", "product_id": HOSTILE_ID, "version": version, "title": HOSTILE_TITLE,
                             "category": "Footwear > Shoes", "image": "images/10009.jpg"}])
    assert result.queued == 1, result.parked
    stack.drained()
    yield
    stack.enqueue([{"type": "delete", "product_id": HOSTILE_ID, "version": version + 1}])
    stack.drained()


def columns_done(driver: Any, request_contains: str) -> bool:
    """All three columns answered the search whose parameters contain ``request_contains``."""
    return driver.execute_script(
        """return [...document.querySelectorAll('.column')].every(
             c => c.dataset.state === 'done' && c.dataset.request.includes(arguments[0]));""",
        request_contains)


def cards(driver: Any, mode: str) -> list[dict[str, str]]:
    return driver.execute_script(
        """return [...document.querySelectorAll(`#col-${arguments[0]} .card`)].map(c => ({
             id: c.dataset.productId, category: c.dataset.category,
             title: c.querySelector('.title').textContent, scores: c.querySelector('.scores').textContent}));""",
        mode)


def photos_settled(driver: Any, mode: str) -> dict[str, int] | None:
    """The column's photos that loaded and failed, once none is still loading."""
    return driver.execute_script(
        """const images = [...document.querySelectorAll(`#col-${arguments[0]} .card img`)];
           if (!images.every(i => i.complete)) return null;
           return {loaded: images.filter(i => i.naturalWidth > 0).length,
                   failed: document.querySelectorAll(`#col-${arguments[0]} .card[data-photo=failed]`).length};""",
        mode)


def wait_for_photos(driver: Any, wait: Any, shown: dict[str, list[dict[str, str]]]) -> None:
    """Photos really load through /images/...: every card's that has one (400 of the 500 samples do)."""
    for mode in shown:
        photos = wait.until(lambda d: photos_settled(d, mode), message=f"the {mode} column's photos never finished")
        assert photos["loaded"] >= 1 and photos["failed"] == 0, (mode, photos)


@pytest.mark.parametrize("stack", ["opensearch"], indirect=True)
def test_the_search_page_in_chromium(browser_binaries: None, stack: Stack, page_url: str, driver: Any,
                                     hostile_product: None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.perf_counter()
    wait = WebDriverWait(driver, WAIT_S)
    driver.get(page_url)
    box = wait.until(lambda d: d.find_element(By.ID, "q"))
    box.send_keys(QUERY, Keys.ENTER)
    wait.until(lambda d: columns_done(d, f"q={QUERY}"), message="the three columns never answered the query")

    before = {mode: cards(driver, mode) for mode in ("bm25", "knn", "hybrid")}
    for mode, shown in before.items():
        assert shown, f"no cards in the {mode} column"
    assert any(QUERY in card["title"].lower() for card in before["bm25"])
    assert "blended" in before["hybrid"][0]["scores"] and "BM25" in before["hybrid"][0]["scores"]
    assert "kNN" in before["knn"][0]["scores"]
    wait_for_photos(driver, wait, before)

    category = driver.find_element(By.ID, "category")
    category.send_keys(CATEGORY, Keys.ENTER)
    wait.until(lambda d: columns_done(d, f"category={CATEGORY}"), message="the filtered search never answered")
    filtered = {}
    for mode in before:
        after = cards(driver, mode)
        assert after, f"no {CATEGORY} cards in the {mode} column"
        assert all(card["category"].startswith(CATEGORY) for card in after), after
        assert [c["id"] for c in after] != [c["id"] for c in before[mode]]
        filtered[mode] = after
    assert f"category={CATEGORY}" in driver.current_url  # the search can be linked to
    wait_for_photos(driver, wait, filtered)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "search-page.png"
    driver.save_screenshot(str(screenshot))
    print(f"\nscreenshot of the search page: {screenshot} (page checks took {time.perf_counter() - started:.1f}s)")

    # "More" continues the hybrid list (through its cursor): new products, the same filter.
    driver.find_element(By.CSS_SELECTOR, "#col-hybrid .more").click()
    wait.until(lambda d: d.find_element(By.ID, "col-hybrid").get_attribute("data-state") == "done"
               and len(cards(d, "hybrid")) > len(filtered["hybrid"]), message="More added no cards")
    longer = cards(driver, "hybrid")
    assert len({card["id"] for card in longer}) == len(longer), "More repeated a product"
    assert all(card["category"].startswith(CATEGORY) for card in longer)

    # Markup in a title is text on the page, and none of it runs.
    box.clear()
    box.send_keys("Zyxwvut", Keys.ENTER)
    wait.until(lambda d: columns_done(d, "q=Zyxwvut"))
    titles = [card["title"] for card in cards(driver, "bm25")]
    assert HOSTILE_TITLE in titles, titles
    assert driver.execute_script("return window.__injected === undefined && !document.querySelector('.title b')")
