"""``report.html`` written by ``guienv eval``, opened in headless Chromium (selenium +
/usr/bin/chromedriver): the metric tables hold the numbers of metrics.json, every screenshot
decodes, thumbnails carry the ground truth (green) and prediction (red) marks, model and data text
is escaped, and the page loads nothing from elsewhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from guienv.io import encode_png
from guienv.run.cli import main
from guienv.types import GroundingSample, ImageRef
from tasks.screenspot import write_screenspot

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script> & done'

pytestmark = [
    pytest.mark.realstack,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs chromium and chromedriver (emulator/install.sh)"),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1280,1600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def mixed_screenspot(tmp_path):
    """Grey screens (no red or green in them). The mobile samples have a whole-screen GT box (a
    random click always hits), the web ones a 1-pixel box (it practically never does); the loader
    serves mobile before web, so failures-first differs from index order. One web sample's
    instruction is hostile HTML."""
    samples = []
    for i in range(4):
        w, h = (800, 450) if i % 2 else (300, 600)
        img = np.full((h, w, 3), 200, np.uint8)
        img[h // 4: h // 2, w // 4: w // 2] = 90
        box = (10.0, 10.0, 11.0, 11.0) if i % 2 else (0.0, 0.0, float(w), float(h))
        samples.append(GroundingSample(
            id=f"s{i}", image=ImageRef(data=encode_png(img), where=f"sample {i}"),
            instruction=HOSTILE if i == 3 else f"press button {i}", box=box, width=w, height=h,
            data_type="text" if i < 2 else "icon", platform="web" if i % 2 else "mobile",
        ))
    return write_screenspot(samples, tmp_path / "mixed", version="v2")


def _open(browser, path: Path) -> None:
    browser.get(path.resolve().as_uri())


def _lookup(metrics: dict, dotted: str):
    """``published.by_split.mobile.text_accuracy`` -> metrics["published"]["by_split"]["mobile"][...];
    ``summary.*`` addresses the top level of metrics.json."""
    head, *rest = dotted.split(".")
    node = metrics if head == "summary" else metrics[head]
    for key in rest:
        node = node[key]
    return node


def _expected_text(key: str, value) -> str:
    if value is None:
        return "-"
    if key.endswith(("accuracy", "_rate")):
        return f"{100 * value:.2f}"
    if key.startswith("mean_"):
        return f"{value:.3f}"
    return str(value)


def _cells(browser) -> list[tuple[str, str]]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-metric]')).map(e => [e.dataset.metric, e.textContent.trim()])")


COLOURS_JS = """
return Array.from(document.images).map(img => {
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data; let red = 0, green = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] > 190 && d[i + 1] < 80 && d[i + 2] < 80) red++;
    if (d[i] < 80 && d[i + 1] > 120 && d[i + 2] < 80) green++;
  }
  return {complete: img.complete, w: img.naturalWidth, h: img.naturalHeight, red: red, green: green,
          src: img.getAttribute('src').slice(0, 23), alt: img.alt};
});
"""


def test_screenspot_report_renders_tables_marks_and_escapes(browser, mixed_screenspot, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "screenspot", "--data", str(mixed_screenspot), "--agent", "random",
                 "--batch-size", "2", "--out", str(out)]) == 0
    report = out / "report.html"
    assert f"report: {report}" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    records = sorted(map(json.loads, (out / "predictions.jsonl").read_text().splitlines()), key=lambda r: r["index"])
    assert [(r["platform"], r["success"]) for r in records] == [("mobile", True)] * 2 + [("web", False)] * 2
    _open(browser, report)

    # tables: every metric cell shows its metrics.json value; the published cells are all there
    cells = _cells(browser)
    for key, text in cells:
        assert text == _expected_text(key.rsplit(".", 1)[1], _lookup(metrics, key)), key
    keys = {k for k, _ in cells}
    for split in metrics["published"]["by_split"]:
        for col in ("text_accuracy", "icon_accuracy", "accuracy", "samples"):
            assert f"published.by_split.{split}.{col}" in keys
    assert {"published.overall.accuracy", "published.overall.macro_accuracy", "summary.overall.success_rate",
            "published.by_platform.web.text_accuracy"} <= keys
    assert dict(cells)["published.overall.accuracy"] == "50.00"

    # screenshots: all decode, bounded thumbnails, GT (green) and prediction (red) drawn on each
    images = browser.execute_script(COLOURS_JS)
    assert len(images) == 4
    for im in images:
        assert im["complete"] and 0 < max(im["w"], im["h"]) <= 360
        assert im["src"].startswith("data:image/jpeg;base64")
        assert im["red"] > 20 and im["green"] > 20, im["alt"]
    # failures first: the two misses, then the two hits
    order = browser.execute_script("return Array.from(document.querySelectorAll('article')).map(a => a.dataset.index)")
    assert order == ["2", "3", "0", "1"]

    # hostile instruction text is shown as text, nothing ran, nothing external
    assert browser.title.startswith("guienv eval") and "pwned" not in browser.title
    assert browser.execute_script("return document.scripts.length") == 0
    assert HOSTILE in browser.execute_script("return document.body.textContent")
    assert browser.execute_script(
        "return Array.from(document.querySelectorAll('[src],[href]')).every(e => (e.getAttribute('src') || e.getAttribute('href')).startsWith('data:'))")


def test_androidcontrol_report_and_rebuild(browser, androidcontrol_file, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "androidcontrol", "--data", str(androidcontrol_file), "--agent", "random",
                 "--batch-size", "2", "--report-episodes", "2", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    _open(browser, out / "report.html")
    cells = dict(_cells(browser))
    for key in ("type_accuracy", "grounding_accuracy", "step_success_rate", "episode_success_rate", "steps"):
        assert cells[f"published.overall.{key}"] == _expected_text(key, metrics["published"]["overall"][key])
    for t in metrics["published"]["by_type"]:
        assert cells[f"published.by_type.{t}.step_success_rate"] == _expected_text(
            "step_success_rate", metrics["published"]["by_type"][t]["step_success_rate"])
    images = browser.execute_script(COLOURS_JS)
    assert len(images) == 2 * 3  # two episodes shown, three steps each
    assert all(im["complete"] and im["w"] > 0 for im in images)
    assert browser.execute_script("return document.querySelectorAll('article').length") == 2

    # `guienv report DIR` re-renders from the run's files (env rebuilt from metrics.json)
    shutil.move(out / "report.html", tmp_path / "old.html")
    assert main(["report", str(out), "--episodes", "3"]) == 0
    _open(browser, out / "report.html")
    images = browser.execute_script(COLOURS_JS)
    assert len(images) == 9 and all(im["complete"] and im["w"] > 0 for im in images)
