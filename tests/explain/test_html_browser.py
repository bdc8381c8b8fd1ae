"""The HTML page in headless Chromium: "next" moves the highlighted window and changes the value."""

import os
import shutil
import tempfile

import numpy as np
import pytest

from cnnstep import explain

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def test_page_is_self_contained():
    trace = explain.pool_forward(np.arange(16.0).reshape(1, 4, 4, 1), {"f": 2, "stride": 2})
    page = explain.render_html(trace)
    assert "http" not in page and "src=" not in page
    assert trace._repr_html_().startswith("<div")


def test_next_moves_window_in_chromium(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.skip("chromium or chromedriver not installed at /usr/bin")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    A = np.random.default_rng(0).standard_normal((1, 5, 5, 1))
    W = np.ones((3, 3, 1, 1))
    trace = explain.conv_forward(A, W, np.zeros((1, 1, 1, 1)), {"stride": 2, "pad": 1})
    page = tmp_path / "conv.html"
    page.write_text(explain.render_html(trace))
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(page.as_uri())

        def state():
            win = [(td.get_attribute("data-r"), td.get_attribute("data-c"))
                   for td in driver.find_elements(By.CSS_SELECTOR, "td.win")]
            return win, driver.find_element(By.CSS_SELECTOR, ".value").text

        win0, text0 = state()
        assert len(win0) == 9 and f"{trace.steps[0].value:.6g}"[:4] in text0
        driver.find_element(By.CSS_SELECTOR, "button.next").click()
        win1, text1 = state()
        assert len(win1) == 9 and win1 != win0 and text1 != text0
        assert "step 2/" in text1
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
