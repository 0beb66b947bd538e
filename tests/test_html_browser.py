"""The HTML attention page in a real browser: headless Chromium driven by Selenium.

The page (semalign/render/html.py) is opened from a file with no network; every test
checks that it loaded without a script error, a console error, a dialog or a request
for anything but the file. Reports are built by hand (tests/html_reports.py), so the
tests need no model and take seconds; what the page shows is compared with the report's
numbers. Skipped, saying what is missing, where selenium, Chromium or chromedriver is not
installed (Debian: ``apt-get install chromium chromium-driver``; ``pip install selenium``).
"""

import json
import os
import shutil

import html_reports
import numpy as np
import pytest

from semalign.render import html

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="needs selenium (pip install -e '.[dev]') to drive Chromium"
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

TOL = 1e-4  # the page holds weights to 5 decimals and writes opacities as given
WIDTH, HEIGHT = 1280, 900

# Installed before the page's own script: records what would otherwise go unnoticed.
_HOOK = """
window.__problems = [];
window.addEventListener("error", (e) => __problems.push("error: " + e.message));
window.addEventListener("unhandledrejection", (e) => __problems.push("rejection: " + e.reason));
for (const k of ["alert", "confirm", "prompt"]) window[k] = (m) => __problems.push(k + ": " + m);
const ce = console.error.bind(console);
console.error = (...a) => { __problems.push("console.error: " + a.join(" ")); ce(...a); };
"""


def _find(env, names):
    given = os.environ.get(env)
    if given:
        return given if os.access(given, os.X_OK) else None
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def driver():
    browser = _find("SEMALIGN_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    chromedriver = _find("SEMALIGN_CHROMEDRIVER", ("chromedriver",))
    if browser is None or chromedriver is None:
        missing = " and ".join(
            what
            for what, found in (("a Chromium browser", browser), ("chromedriver", chromedriver))
            if found is None
        )
        pytest.skip(
            f"needs {missing} (Debian: apt-get install chromium chromium-driver; or set "
            "SEMALIGN_CHROMIUM / SEMALIGN_CHROMEDRIVER)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        "--disable-extensions",
        "--no-first-run",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(options=options, service=Service(chromedriver))
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _HOOK})
    yield d
    d.quit()


def open_page(driver, report, tmp_path, name="a.html"):
    path = tmp_path / name
    html.write(report, [path])
    driver.set_window_size(WIDTH, HEIGHT)
    driver.get_log("browser"), driver.get_log("performance")  # drain earlier pages' logs
    driver.get(path.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    return path


def assert_clean(driver, path):
    """No script error, console error or dialog; nothing fetched but the file itself."""
    problems = driver.execute_script("return window.__problems")
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == [] and severe == [], (problems, severe)
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert urls and all(u == path.as_uri() or u.startswith("data:") for u in urls), urls


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def texts_of(driver, css):
    return js(driver, f"return [...document.querySelectorAll({css!r})].map(e => e.textContent)")


def lines(driver):
    """``{(query, key): (opacity, stroke)}`` of the head view, and its smallest weight."""
    got = js(
        driver,
        """return [...document.querySelectorAll('#linesvg line')].map(l => [
            +l.getAttribute('data-i'), +l.getAttribute('data-j'),
            +l.getAttribute('stroke-opacity'), l.getAttribute('stroke')]);""",
    )
    smallest = float(js(driver, "return document.getElementById('linesvg').dataset.min"))
    return {(i, j): (op, stroke) for i, j, op, stroke in got}, smallest


def assert_lines_match(driver, m, mask):
    """One line per visible weight ``|w| >= min``, opacity ``min(1, |w|)``, colour by sign."""
    got, smallest = lines(driver)
    m = np.asarray(m, np.float64)
    for (i, j), (op, _) in got.items():
        assert mask[i, j], (i, j)
        assert abs(op - min(1.0, abs(m[i, j]))) <= TOL, ((i, j), op, m[i, j])
    must = {(i, j) for i, j in zip(*np.nonzero(mask & (np.abs(m) >= smallest + TOL)), strict=True)}
    never = {(i, j) for i, j in zip(*np.nonzero(~mask | (np.abs(m) < smallest - TOL)), strict=True)}
    assert must <= set(got) and not never & set(got)
    positive = {s for (i, j), (_, s) in got.items() if m[i, j] > TOL}
    negative = {s for (i, j), (_, s) in got.items() if m[i, j] < -TOL}
    assert not positive & negative


def title(driver):
    return driver.find_element(By.ID, "title").text


def hover_cell(driver, i, j):
    """Move the mouse over cell (query i, key j) of the large heat map."""
    canvas = driver.find_element(By.ID, "heat")
    js(driver, "arguments[0].scrollIntoView({block: 'center', inline: 'start'})", canvas)
    cell, size = int(canvas.get_attribute("data-cell")), canvas.size
    ActionChains(driver).move_to_element_with_offset(
        canvas,
        round((j + 0.5) * cell - size["width"] / 2),
        round((i + 0.5) * cell - size["height"] / 2),
    ).perform()
    return driver.find_element(By.ID, "info").text


def selected_thumb(driver):
    """``(layer, head)`` of the one small multiple marked selected."""
    (sel,) = driver.find_elements(By.CSS_SELECTOR, "#grid canvas.thumb.sel")
    return sel.get_attribute("data-layer"), sel.get_attribute("data-head")


def heat(driver):
    return js(driver, "return document.getElementById('heat').toDataURL()")


@pytest.fixture(scope="module")
def report():
    return html_reports.report(
        [
            (html_reports.NASTY, html_reports.NASTY_TOKENS),
            ("a fine film", ("[CLS]", "a", "fine", "film")),
        ]
    )


def test_loads_clean_and_shows_every_token_literally(driver, report, tmp_path):
    path = open_page(driver, report, tmp_path)
    t = report.texts[0]
    assert driver.find_element(By.ID, "sentence").get_attribute("textContent") == f"“{t.text}”"
    for view in ("#map .queries .tok", "#map .keys .tok", "#lines .q .tok", "#lines .k .tok"):
        assert texts_of(driver, view) == list(t.tokens), view
    # The text brought no element: the page's two scripts, no bold, no comment node.
    assert js(driver, "return document.scripts.length") == 2
    assert js(driver, "return document.querySelectorAll('#sentence *').length") == 0
    assert driver.title == "semalign attention · synthetic"
    Select(driver.find_element(By.ID, "text")).select_by_value("1")
    assert texts_of(driver, "#lines .q .tok") == list(report.texts[1].tokens)
    assert driver.find_element(By.ID, "sentence").text == "“a fine film”"
    assert_clean(driver, path)


def test_selectors_change_the_head_shown(driver, report, tmp_path):
    path = open_page(driver, report, tmp_path)
    t = report.texts[0]
    assert title(driver) == "layer 0 · head 0 (dot) · weights"
    assert selected_thumb(driver) == ("0", "0")
    assert_lines_match(driver, t.weights[0, 0], t.mask)
    before = heat(driver)
    Select(driver.find_element(By.ID, "layer")).select_by_value("1")
    Select(driver.find_element(By.ID, "head")).select_by_value("2")
    assert title(driver) == "layer 1 · head 2 (diff-transformer) · weights"
    assert heat(driver) != before
    assert selected_thumb(driver) == ("1", "2")
    assert_lines_match(driver, t.weights[1, 2], t.mask)
    assert (t.weights[1, 2] < 0).any()  # the signed head draws its negative lines too
    Select(driver.find_element(By.ID, "head")).select_by_value("mean")
    assert title(driver) == "layer 1 · mean of heads · weights"
    assert_lines_match(driver, t.weights[1].astype(np.float64).mean(0), t.mask)
    shown = heat(driver)
    Select(driver.find_element(By.ID, "values")).select_by_value("logits")
    assert title(driver) == "layer 1 · mean of heads · raw scores" and heat(driver) != shown
    assert_lines_match(driver, t.weights[1].astype(np.float64).mean(0), t.mask)  # still weights
    Select(driver.find_element(By.ID, "layer")).select_by_value("rollout")
    assert title(driver) == "rollout · all 2 layers × 3 heads"
    assert not driver.find_element(By.ID, "head").is_enabled()
    assert_lines_match(driver, t.rollout, t.mask)
    assert_clean(driver, path)


def test_model_view_has_every_head_and_a_click_opens_it(driver, report, tmp_path):
    path = open_page(driver, report, tmp_path)
    t = report.texts[0]
    thumbs = driver.find_elements(By.CSS_SELECTOR, "#grid canvas.thumb")
    assert len(thumbs) == len(report.layers) * len(report.heads)
    got = {(int(c.get_attribute("data-layer")), int(c.get_attribute("data-head"))) for c in thumbs}
    assert got == {(li, h) for li in range(2) for h in range(3)}
    n = t.length
    assert all(
        js(driver, "return [arguments[0].width, arguments[0].height]", c) == [n, n] for c in thumbs
    )
    driver.find_element(By.CSS_SELECTOR, '#grid canvas[data-layer="1"][data-head="1"]').click()
    assert title(driver) == "layer 1 · head 1 (cosine) · weights"
    assert driver.find_element(By.ID, "layer").get_attribute("value") == "1"
    assert driver.find_element(By.ID, "head").get_attribute("value") == "1"
    assert selected_thumb(driver) == ("1", "1")
    assert_lines_match(driver, t.weights[1, 1], t.mask)
    assert_clean(driver, path)


def test_hovering_shows_the_value_and_keeps_only_a_tokens_lines(driver, report, tmp_path):
    path = open_page(driver, report, tmp_path)
    t = report.texts[1]
    Select(driver.find_element(By.ID, "text")).select_by_value("1")
    for i, j in ((0, 0), (2, 1), (3, 3)):
        info = hover_cell(driver, i, j)
        assert info.startswith(f"#{i} {t.tokens[i]} → {t.tokens[j]} = "), info
        assert abs(float(info.split("= ")[1].split()[0]) - t.weights[0, 0, i, j]) <= TOL
        on = texts_of(driver, "#map .tok.on")
        assert sorted(on) == sorted([t.tokens[i], t.tokens[j]])
    queries = driver.find_elements(By.CSS_SELECTOR, "#lines .q .tok")
    ActionChains(driver).move_to_element(queries[2]).perform()
    svg = driver.find_element(By.ID, "linesvg")
    assert "focus" in svg.get_attribute("class")
    shown = js(
        driver,
        """return [...document.querySelectorAll('#linesvg line')]
        .filter(l => getComputedStyle(l).visibility === 'visible')
        .map(l => +l.getAttribute('data-i'));""",
    )
    got, _ = lines(driver)
    assert shown and set(shown) == {2} and len(shown) == sum(i == 2 for i, _ in got)
    ActionChains(driver).move_to_element(driver.find_element(By.ID, "title")).perform()
    assert "focus" not in (svg.get_attribute("class") or "")
    assert_clean(driver, path)


def test_causal_map_and_a_vocabulary(driver, tmp_path):
    tokens = ("[CLS]", "the", "movie", "was", "good")
    report = html_reports.report(
        [("the movie was good", tokens)],
        causal=True,
        labels=50,
        roll=False,
        scorings=("dot", "dot"),
    )
    path = open_page(driver, report, tmp_path)
    t = report.texts[0]
    got, _ = lines(driver)
    assert got and all(j <= i for i, j in got)  # a token sees only those before it
    assert_lines_match(driver, t.weights[0, 0], t.mask)
    assert "(top 8 of 50)" in driver.find_element(By.ID, "prediction").text
    options = [
        o.get_attribute("value") for o in Select(driver.find_element(By.ID, "layer")).options
    ]
    assert options == ["0", "1"]  # no rollout was asked for
    assert hover_cell(driver, 0, len(tokens) - 1).startswith("#0 [CLS] → good = masked")
    assert_clean(driver, path)


def label_geometry(driver):
    return js(
        driver,
        """
        const px = (e) => parseFloat(getComputedStyle(e).fontSize);
        const q = [...document.querySelectorAll('#map .queries .tok')], k = [...document
            .querySelectorAll('#map .keys .tok')];
        return {cell: +document.getElementById('heat').dataset.cell,
          width: document.getElementById('heat').getBoundingClientRect().width,
          box: document.getElementById('map').clientWidth,
          fonts: q.concat(k).map(px),
          qh: q.map(e => e.getBoundingClientRect().height),
          kw: k.map(e => e.getBoundingClientRect().width),
          qclip: q.map(e => e.scrollWidth > e.clientWidth + 1),
          kclip: k.map(e => e.scrollHeight > e.clientHeight + 1)};""",
    )


def test_cells_follow_the_text_and_the_window_labels_stay_readable(driver, tmp_path):
    def words(n):
        return ("[CLS]", *(f"w{i}" for i in range(1, n)))

    long_tokens = (*words(149), "supercalifragilisticexpialidocious-and-more")
    report = html_reports.report(
        [("short", words(5)), ("medium", words(40)), ("long", long_tokens)],
        scorings=("dot",),
        layers=1,
        roll=False,
    )
    path = open_page(driver, report, tmp_path)
    cells = {}
    for index, n in ((0, 5), (1, 40), (2, 150)):
        Select(driver.find_element(By.ID, "text")).select_by_value(str(index))
        g = label_geometry(driver)
        cells[n] = g["cell"]
        assert texts_of(driver, "#map .queries .tok") == list(report.texts[index].tokens)
        assert abs(g["width"] - n * g["cell"]) < 0.5  # one cell per token, side by side
        # Readable labels, each as tall (queries) or wide (keys) as its row of cells,
        # none clipped but the one token too long for any label (its title holds it all).
        assert min(g["fonts"]) >= 10 and max(g["fonts"]) <= g["cell"]
        assert all(abs(h - g["cell"]) < 0.5 for h in g["qh"] + g["kw"])
        clipped = [
            tok
            for tok, q, k in zip(report.texts[index].tokens, g["qclip"], g["kclip"], strict=True)
            if q or k
        ]
        assert clipped == ([long_tokens[-1]] if n == 150 else []), clipped
        if n == 40:
            assert g["width"] <= g["box"]  # fits the window: no scrolling
        if n == 150:
            assert g["width"] > g["box"]  # too long to fit readably: the map scrolls
    assert cells[5] > cells[40] > cells[150]
    # The window decides too: narrower or lower, smaller cells (never below readable).
    sizes = {}
    for w, h in ((WIDTH, 1400), (640, 1400), (WIDTH, 600)):
        driver.set_window_size(w, h)
        Select(driver.find_element(By.ID, "text")).select_by_value("0")
        Select(driver.find_element(By.ID, "text")).select_by_value("1")  # redraws now
        g = label_geometry(driver)
        sizes[w, h] = g["cell"]
        assert min(g["fonts"]) >= 10 and max(g["fonts"]) <= g["cell"]
        assert g["width"] <= g["box"]
    assert sizes[640, 1400] < sizes[WIDTH, 1400] and sizes[WIDTH, 600] < sizes[WIDTH, 1400]
    assert_clean(driver, path)
