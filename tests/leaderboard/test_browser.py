"""The built site in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium with the driver's path given, so Selenium Manager never downloads anything): it loads from
file:// with no console error and no network request, every table has its rows, clicking a header
sorts, and a hostile model name is text that runs nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from capcast.leaderboard import build_leaderboard

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(f"no Chromium: {CHROMIUM} or {DRIVER} is missing (Debian: apt-get install chromium chromium-driver; .ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--no-first-run", "--disable-background-networking", "--disable-component-update"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(inputs, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser-site")
    index = build_leaderboard([inputs["backtest"], inputs["forecast"], inputs["hindsight"]], folder / "site",
                              scores=[inputs["scores"]], registry=folder / "registry.jsonl", title="leaderboard under test")
    return index.parent


def _load(browser, page: Path):
    browser.get_log("browser"), browser.get_log("performance")  # drop what earlier pages logged
    browser.get(page.as_uri())
    browser.execute_script("return document.readyState")  # the page and its deferred script have run
    console = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    return console, requests


def test_every_page_loads_offline_without_errors(browser, site, tmp_path):
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 3  # index, methods, one family
    for page in pages:
        console, requests = _load(browser, page)
        assert console == [], f"{page.name}: {console}"
        assert requests and all(url.startswith("file://") for url in requests), f"{page.name} asked for {requests}"
        # the page's own assets were the requests, and they worked: the style applies, the script ran
        assert {u.rsplit("/", 1)[-1] for u in requests} >= {page.name, "style.css", "table.js"}, requests
        assert browser.execute_script("return getComputedStyle(document.querySelector('th')).cursor") == "pointer"
        assert browser.execute_script("return document.querySelector('th').tabIndex") == 0
        browser.save_screenshot(str(tmp_path / f"{page.stem}.png"))
    assert (tmp_path / "index.png").stat().st_size > 10_000


def _rows(browser, table_id: str) -> list[list[str]]:
    return browser.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows).map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
        table_id)


def test_tables_have_their_rows_and_headers_sort(browser, site, inputs):
    from selenium.webdriver.common.by import By

    backtest = json.loads(inputs["backtest"].read_text())
    _load(browser, site / "index.html")
    ranking = _rows(browser, "ranking-table")
    assert [r[1] for r in ranking] == sorted(backtest["methods"], key=lambda m: (backtest["methods"][m]["mae"] is None,
                                                                                    backtest["methods"][m]["mae"] or 0))
    assert len(_rows(browser, "registered-table")) == len(json.loads(inputs["forecast"].read_text())["rows"])
    assert len(_rows(browser, "sources-table")) == 3
    # click "method": sorted by name; click again: reversed; click the MAE: numeric order
    header = browser.find_elements(By.CSS_SELECTOR, "#ranking-table thead th")
    names = [h.text.strip() for h in header]
    header[names.index("method")].click()
    assert [r[1] for r in _rows(browser, "ranking-table")] == sorted(r[1] for r in ranking)
    header[names.index("method")].click()
    assert [r[1] for r in _rows(browser, "ranking-table")] == sorted((r[1] for r in ranking), reverse=True)
    header[names.index("MAE (pts)")].click()
    maes = [float(r[2]) for r in _rows(browser, "ranking-table") if r[2]]
    assert maes == sorted(maes) and len(maes) >= 2
    assert header[names.index("MAE (pts)")].get_attribute("aria-sort") == "ascending"
    _load(browser, next(site.glob("family-*.html")))
    tables = browser.find_elements(By.CSS_SELECTOR, "table.task-table")
    per_task = {t: sum(1 for r in backtest["rows"] if r["task"] == t) + 2 for t in ("arc", "piqa")}  # + registered + hindsight
    assert sorted(len(t.find_elements(By.CSS_SELECTOR, "tbody tr")) for t in tables) == sorted(per_task.values())


def test_a_hostile_model_name_is_text(browser, site, malicious):
    for page in sorted(site.glob("*.html")):
        _load(browser, page)
        title = browser.title
        assert browser.execute_script("return document.querySelectorAll('img, script:not([src]), [onerror]').length") == 0, page.name
        if page.name.startswith("family-"):
            assert title.startswith("fam · leaderboard under test")
            cells = browser.execute_script("return Array.from(document.querySelectorAll('td')).map(c => c.textContent)")
            assert malicious in cells
            tips = browser.execute_script("return Array.from(document.querySelectorAll('svg title')).map(t => t.textContent)")
            assert any(malicious in t for t in tips)
        else:
            assert title.endswith("leaderboard under test")


def test_the_checks_see_a_network_request_and_an_injected_element(browser, site, tmp_path):
    """The checks above can fail: a page that asks the network and carries an injected element is caught."""
    bad = site / "planted.html"
    html = (site / "index.html").read_text()
    bad.write_text(html.replace("</main>", '<img src="http://203.0.113.1/x.png" onerror="document.title=1"></main>'))
    try:
        console, requests = _load(browser, bad)
        # either the request went out or the page's CSP refused it with a console error: both fail the checks above
        assert any(u.startswith("http://203.0.113.1") for u in requests) or any("203.0.113.1" in e["message"] for e in console)
        assert browser.execute_script("return document.querySelectorAll('img, [onerror]').length") == 1
    finally:
        bad.unlink()
