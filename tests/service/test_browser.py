"""The web page in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

Nothing is downloaded: the browser and the driver are the system's (/usr/bin/chromium, /usr/bin/chromedriver)
and Selenium Manager runs offline. Screenshots go to tmp_path, or to $TRANSLATE_SCREENSHOTS when set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.service.live import call

BROWSER, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver")
if not (os.path.exists(BROWSER) and DRIVER):
    pytest.skip("the browser test needs Debian's chromium and chromium-driver packages: "
                "apt-get install -y chromium chromium-driver", allow_module_level=True)  # fmt: skip
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    offline = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for (or download) anything
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1100,1000", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    if offline is None:
        os.environ.pop("SE_OFFLINE", None)
    else:
        os.environ["SE_OFFLINE"] = offline


def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("TRANSLATE_SCREENSHOTS", tmp_path))
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_page_translates_draws_the_heatmap_and_shows_errors(live, browser, tmp_path):
    wait = WebDriverWait(browser, 30)
    browser.get(live.url + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 3)
    Select(browser.find_element(By.ID, "model")).select_by_value("tiny")
    assert browser.find_element(By.ID, "pair").text == "es → en"
    source = browser.find_element(By.ID, "source")
    source.send_keys("Dios es amor.")
    source.send_keys(Keys.CONTROL, Keys.ENTER)  # the keyboard shortcut
    wait.until(EC.visibility_of_element_located((By.ID, "result")))
    beam = int(browser.find_element(By.ID, "beam").get_attribute("value"))
    nbest = int(browser.find_element(By.ID, "nbest").get_attribute("value"))
    _, _, api = call(live.url, "/v1/translate", {"q": "Dios es amor.", "model": "tiny", "beam": beam,
                                                  "nbest": nbest, "alignment": True})  # fmt: skip
    t = api["translations"]
    assert browser.find_element(By.ID, "translation").text == t["text"].strip()
    alternatives = browser.find_elements(By.CSS_SELECTOR, "#alternatives li")
    assert [li.text.split("score")[0].strip() for li in alternatives] == [a["text"] for a in t["nbest"]]
    assert "ms in the browser" in browser.find_element(By.ID, "latency").text

    def heatmap_shape():
        rows = browser.find_elements(By.CSS_SELECTOR, "table.heatmap tbody tr")
        cols = {len(r.find_elements(By.TAG_NAME, "td")) for r in rows}
        heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.heatmap thead th")][1:]
        return len(rows), cols, len(heads)

    for i in (0, len(alternatives) - 1):  # the selected alternative's alignment: target words down
        alternatives[i].click()
        a = t["units"][0]["hypotheses"][i]["alignment"]
        rows, cols = len(a["target_words"]), len(a["source_words"])
        pieces = (len(a["weights"]), len(a["weights"][0]))
        assert (len(a["target_word_of"]), len(a["source_word_of"])) == pieces
        assert max(a["target_word_of"]) + 1 == rows and max(a["source_word_of"]) + 1 == cols
        assert heatmap_shape() == (rows, {cols}, cols)
    browser.save_screenshot(str(shots(tmp_path) / "serve_page.png"))

    browser.execute_script("document.getElementById('source').value = 'a'.repeat(3000);")
    browser.find_element(By.ID, "translate").click()  # over the test server's 2000-character limit
    error = wait.until(EC.visibility_of_element_located((By.ID, "error")))
    assert "413" in error.text and "over this server's limit of 2000" in error.text
    assert not browser.find_element(By.ID, "result").is_displayed()
    browser.save_screenshot(str(shots(tmp_path) / "serve_page_error.png"))


def test_page_translates_a_file(live, browser, tmp_path):
    """The file box: a .txt goes to /translate_file and a download link comes back; a wrong type is an error
    in the page."""
    import urllib.request

    wait = WebDriverWait(browser, 30)
    browser.get(live.url + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 3)
    Select(browser.find_element(By.ID, "model")).select_by_value("tiny")
    text = "Dios es amor.\nLa luz es buena.\n"
    (tmp_path / "carta.txt").write_text(text, encoding="utf-8")
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "carta.txt"))
    browser.find_element(By.ID, "translate-file").click()
    link = wait.until(EC.visibility_of_element_located((By.ID, "file-link")))
    assert "carta.txt" in link.text
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as r:
        got = r.read().decode()
    lines = live.translator.translate(text.split("\n"), live.served["tiny"].search)
    assert got == "\n".join(line[0] for line in lines)
    browser.save_screenshot(str(shots(tmp_path) / "serve_page_file.png"))
    (tmp_path / "virus.exe").write_bytes(b"MZ")
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "virus.exe"))
    browser.find_element(By.ID, "translate-file").click()
    error = wait.until(EC.visibility_of_element_located((By.ID, "error")))
    assert "400" in error.text and "file format not supported: .exe" in error.text
    assert not browser.find_element(By.ID, "file-link").is_displayed()
