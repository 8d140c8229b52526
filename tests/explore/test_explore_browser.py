"""`convzoo explore` in a real browser: Debian's chromium, headless, driven by selenium through
chromedriver. Starts the real command (`python -m convzoo explore --port 0`), picks lenet5:mnist,
takes a test digit, checks the top-1 shown is its label, opens the first conv layer and checks its
6 feature maps are drawn and not blank, and saves a screenshot; then a block (depth 1) and an
uploaded digit. Skips only without chromium.

``CONVZOO_EXPLORE_SCREENSHOT=docs/explore.png`` also writes the screenshot there (for the README).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)),
                None)
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="no chromium + chromedriver (CI installs Debian's "
                                "chromium and chromium-driver with apt-get)")


@pytest.fixture
def server(tmp_path):
    broken = tmp_path / "runs" / "broken"  # listed (it has weights) but does not load
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    (broken / "config.json").write_text('{"model": "lenet5", "data": "mnist"}')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "convzoo", "explore", "--port", "0",
                             "--runs", str(tmp_path / "runs")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    url, seen = None, []
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
        url = m.group(1) if m else None
    if url is None:
        proc.kill()
        pytest.fail("convzoo explore did not print its URL:\n" + "".join(seen))
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--hide-scrollbars"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, what, timeout=90):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:  # an element the page redrew while it was read: poll again
        return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=[
            StaleElementReferenceException]).until(lambda d: what(d))
    except TimeoutException:  # say what the page said
        status = driver.find_element(By.ID, "status").text
        logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
        raise AssertionError(f"timed out after {timeout} s; page status {status!r}; "
                             f"console {logs[-5:]}") from None


def test_explore_lenet5_digit_and_first_conv_maps(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(server)
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option[value='lenet5:mnist']"))
    select = Select(d.find_element(By.ID, "model"))
    if select.first_selected_option.get_attribute("value") != "lenet5:mnist":
        select.select_by_value("lenet5:mnist")
    _wait(d, lambda d: "lenet5" in d.find_element(By.ID, "card").text)
    samples = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#samples .sample"))
    sample = samples[0]
    label = sample.get_attribute("data-label")
    sample.click()
    classes = _wait(d, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#top5 li.top-row')].map((r) => r.dataset.class)"))
    assert len(classes) == 5
    assert classes[0] == label
    assert f"true class {label}: rank 1" in d.find_element(By.ID, "truth").text

    conv = d.find_element(By.CSS_SELECTOR, "tr.layer[data-type='Conv2d']")
    assert conv.get_attribute("data-index") == "1"  # row 0: F.pad, 28x28 to 32x32
    pad = d.find_element(By.CSS_SELECTOR, "tr.layer[data-index='0']")
    assert "F.pad" in pad.text and "1×32×32" in pad.text
    conv.click()
    maps = _wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#maps canvas.map")) == 6
                 and d.find_elements(By.CSS_SELECTOR, "#im2col canvas"))
    assert maps
    # Each map's pixels, read back from its canvas: a drawn, non-blank map has more than one colour.
    spread = d.execute_script("""
        return [...document.querySelectorAll('#maps canvas.map')].map((c) => {
          const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let lo = 255, hi = 0;
          for (let i = 0; i < px.length; i += 4) {
            if (px[i + 3] === 0) return -1;  // a transparent pixel: not drawn
            const v = px[i] + px[i + 1] + px[i + 2];
            lo = Math.min(lo, v); hi = Math.max(hi, v);
          }
          return hi - lo;
        });""")
    assert len(spread) == 6 and all(s > 30 for s in spread), spread
    assert "im2col(input) = cols 25×784" in d.find_element(By.ID, "im2col").text
    assert not d.find_element(By.ID, "status").text

    shot = tmp_path / "explore.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    target = os.environ.get("CONVZOO_EXPLORE_SCREENSHOT")
    if target:
        from PIL import Image

        img = Image.open(shot).convert("RGB").quantize(colors=128)
        img.save(Path(target), optimize=True)

    # Blocks (convzoo summary --depth 1): lenet5's `features` ends in the second pool, 16 maps.
    Select(d.find_element(By.ID, "depth")).select_by_value("1")
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.layer[data-block='features']"))
    d.find_element(By.CSS_SELECTOR, "tr.layer[data-block='features']").click()
    _wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#maps canvas.map")) == 16)
    assert d.find_element(By.ID, "layer-title").text == "Block features (Sequential)"
    assert not d.find_element(By.ID, "status").text

    # An upload through the page's file input (what a drop hands over too): another test digit.
    from PIL import Image

    from convzoo.data import load_dataset

    ds = load_dataset("mnist", None, "test")
    Image.fromarray(ds.images[5, 0].numpy()).save(tmp_path / "digit.png")
    d.find_element(By.ID, "file").send_keys(str(tmp_path / "digit.png"))
    _wait(d, lambda d: d.find_element(By.ID, "preview").get_attribute("src").find("image=u") > 0
          and d.find_element(By.CSS_SELECTOR, "#top5 li.top-row").get_attribute("data-class")
          == str(int(ds.labels[5])))
    assert not d.find_element(By.ID, "truth").text  # an upload has no label


def _open_lenet5(d):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option[value='lenet5:mnist']"))
    select = Select(d.find_element(By.ID, "model"))
    if select.first_selected_option.get_attribute("value") != "lenet5:mnist":
        select.select_by_value("lenet5:mnist")
    _wait(d, lambda d: "lenet5" in d.find_element(By.ID, "card").text
          and d.find_elements(By.CSS_SELECTOR, "#samples .sample"))
    return select


def _inside(d, element_id, panel="layer-panel"):
    """The element's box lies within the panel's (no spill past its right or left edge)."""
    return d.execute_script("""
        const a = document.getElementById(arguments[0]).getBoundingClientRect();
        const b = document.getElementById(arguments[1]).getBoundingClientRect();
        return [a.left >= b.left - 0.5 && a.right <= b.right + 0.5, a.width, b.width];""",
                            element_id, panel)


def test_fully_connected_layers_and_logits_are_readable(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    d = browser
    d.get(server)
    _open_lenet5(d)
    sample = d.find_elements(By.CSS_SELECTOR, "#samples .sample")[3]
    label = sample.get_attribute("data-label")
    sample.click()
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#top5 li.top-row"))
    # Linear 400 -> 120: a grid of 120 cells inside the panel, with a legend and hover values.
    d.find_element(By.CSS_SELECTOR, "tr.layer[data-name='classifier.1']").click()
    _wait(d, lambda d: d.find_elements(By.ID, "vector-grid"))
    assert d.find_element(By.ID, "maps-box").get_attribute("hidden")
    inside, width, _ = _inside(d, "vector-grid")
    assert inside and width >= 200, width  # cells, not a 600x5 strip
    assert "a vector of 120 values" in d.find_element(By.ID, "vector-note").text
    assert d.find_elements(By.CSS_SELECTOR, "#vector .legend canvas")

    def hover_first_cell(d) -> bool:  # found again on each try: the page may redraw the grid
        g = d.find_element(By.ID, "vector-grid")
        ActionChains(d).move_to_element_with_offset(g, 2 - g.size["width"] // 2,
                                                    2 - g.size["height"] // 2).perform()
        return d.find_element(By.ID, "vector-hover").text.startswith("value 0: ")

    _wait(d, hover_first_cell)
    # The output: ten rows, each a class name, its logit and its softmax probability.
    d.find_element(By.CSS_SELECTOR, "tr.layer[data-name='classifier.5']").click()
    rows = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#logits tr.logit-row"))
    assert [r.get_attribute("data-class") for r in rows] == [str(k) for k in range(10)]
    probs = [float(r.find_element(By.CSS_SELECTOR, "td.prob").text.rstrip("%")) for r in rows]
    assert sum(probs) == pytest.approx(100, abs=0.6) and probs.index(max(probs)) == int(label)
    logits = [float(r.find_element(By.CSS_SELECTOR, "td.logit").text) for r in rows]
    assert logits.index(max(logits)) == int(label)
    assert _inside(d, "logits")[0]
    assert not d.find_element(By.ID, "status").text


def test_layout_keyboard_and_the_slide_example_on_resnet20(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(server)
    _open_lenet5(d)
    Select(d.find_element(By.ID, "model")).select_by_value("resnet20:cifar10")
    _wait(d, lambda d: "resnet20" in d.find_element(By.ID, "card").text
          and d.find_elements(By.CSS_SELECTOR, "tr.layer[data-name='layer1.0.add']"))
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#samples .sample"))[0].click()
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#top5 li.top-row"))
    fits = """
        const first = document.querySelector('#layers th:first-child').getBoundingClientRect();
        const th = document.querySelector('#layers th:last-child').getBoundingClientRect();
        const panel = document.getElementById('layers-panel').getBoundingClientRect();
        return th.width > 0 && th.right <= panel.right + 0.5 && first.left >= panel.left;"""
    for width in (1400, 1024, 1920):  # nothing of the table cut: RF's column inside the panel
        d.set_window_size(width, 1000)
        assert d.execute_script(fits), width
    d.set_window_size(1400, 1000)
    # The keyboard: Tab from the depth menu past the slide button reaches the first row, Enter
    # opens it, the down arrow the next.
    d.find_element(By.ID, "depth").send_keys(Keys.TAB)
    d.switch_to.active_element.send_keys(Keys.TAB)
    active = d.switch_to.active_element
    assert active.get_attribute("data-index") == "0"
    active.send_keys(Keys.ENTER)
    _wait(d, lambda d: d.find_element(By.ID, "layer-title").text.startswith("Layer 0: conv1"))
    d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    _wait(d, lambda d: d.find_element(By.ID, "layer-title").text.startswith("Layer 1: bn1"))
    # Batch normalization worked out (train: the mini-batch's statistics; eval: the running
    # ones), and a ReLU's input beside its output.
    _wait(d, lambda d: "batch normalization" in d.find_element(By.ID, "explain").text)
    table = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#bn-table b[data-y]"))
    assert len(table) == 2 and "F.batch_norm" in d.find_element(By.ID, "bn-table").text
    d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    _wait(d, lambda d: d.find_element(By.ID, "layer-title").text.startswith("Layer 2: relu"))
    _wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#before canvas.map")) == 16)
    _wait(d, lambda d: "max(0, x)" in d.find_element(By.ID, "explain").text)
    # resnet20 has no MaxPool2d row; the slide's 4x4 example is one button away all the same.
    d.find_element(By.ID, "pool-slide").click()
    cells = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#pool table.grid")[1:])
    assert cells[0].text.split() == ["6.00", "8.00", "3.00", "4.00"]
    assert not d.find_element(By.ID, "status").text
    # An ImageNet-sized table (resnet18 at 224 px: "64×112×112", "118.01 M") fits too.
    Select(d.find_element(By.ID, "model")).select_by_value("resnet18")
    _wait(d, lambda d: "resnet18" in d.find_element(By.ID, "card").text)
    d.find_element(By.CSS_SELECTOR, "tr.layer[data-name='layer1.0.add']").click()
    for width in (1400, 1024):
        d.set_window_size(width, 1000)
        assert d.execute_script(fits), width


def _lenet5_conv2_in_float64(sample_id: str):
    """LeNet-5's conv2 output (16, 10, 10) on the test digit ``s:I:mnist``, in float64."""
    import copy

    import torch
    from torchvision.transforms.v2.functional import to_pil_image

    from convzoo import load_trained
    from convzoo.analysis.loading import image_transform
    from convzoo.data import load_dataset

    loaded = load_trained("lenet5:mnist")
    i = int(sample_id.split(":")[1])
    x = image_transform(loaded)(to_pil_image(load_dataset("mnist", None, "test").images[i]))
    net = copy.deepcopy(loaded.model).double()
    with torch.no_grad():
        return net.features[:4](torch.nn.functional.pad(x.double()[None], (2, 2, 2, 2)))[0]


def test_a_clicked_convolution_output_is_explained_as_its_sum(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    d = browser
    d.get(server)
    _open_lenet5(d)
    sample = d.find_elements(By.CSS_SELECTOR, "#samples .sample")[6]
    sample.click()
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#top5 li.top-row"))
    d.find_element(By.CSS_SELECTOR, "tr.layer[data-name='features.3']").click()  # conv2
    maps = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#maps canvas[data-channel]"))
    assert len(maps) == 16
    target = maps[3]
    size = target.size  # 10x10 map drawn at some scale; the pointer at row 4, col 6
    ActionChains(d).move_to_element_with_offset(
        target, int((6.5 / 10 - 0.5) * size["width"]), int((4.5 / 10 - 0.5) * size["height"])
    ).perform()
    _wait(d, lambda d: d.find_element(By.ID, "maps-hover").text.startswith(
        "channel 3, row 4, col 6: ≈"))
    ActionChains(d).click().perform()
    eq = _wait(d, lambda d: d.find_elements(By.ID, "conv-sum"))[0]
    text = d.find_element(By.ID, "conv").text
    assert "output channel 3, row 4, col 6" in text and "Σ over 6 input channels" in text
    want = float(_lenet5_conv2_in_float64(sample.get_attribute("data-id"))[3, 4, 6])
    assert float(eq.get_attribute("data-sum")) == pytest.approx(want, abs=1e-6)
    assert float(eq.get_attribute("data-output")) == pytest.approx(want, abs=1e-4)
    assert len(d.find_elements(By.CSS_SELECTOR, "#conv .term")) == 6
    assert d.find_elements(By.CSS_SELECTOR, "#conv canvas.map")  # the window over its input
    assert not d.find_element(By.ID, "status").text
    # The keyboard: the clicked map has focus; the right arrow, then Enter, explains col 7.
    from selenium.webdriver.common.keys import Keys

    d.execute_script("arguments[0].focus()", target)
    d.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    d.switch_to.active_element.send_keys(Keys.ENTER)
    _wait(d, lambda d: "row 4, col 7" in d.find_element(By.ID, "conv").text)
    eq = d.find_element(By.ID, "conv-sum")
    want = float(_lenet5_conv2_in_float64(sample.get_attribute("data-id"))[3, 4, 7])
    assert float(eq.get_attribute("data-sum")) == pytest.approx(want, abs=1e-6)
    # The window slides along the row, position after position, to the last column.
    d.find_element(By.ID, "conv-slide").click()
    _wait(d, lambda d: "row 4, col 0" in d.find_element(By.ID, "conv").text, timeout=30)
    _wait(d, lambda d: "row 4, col 9" in d.find_element(By.ID, "conv").text, timeout=60)


def _non_blank(png_path: Path) -> float:
    """The standard deviation of a screenshot's grey levels: 0 for a blank one."""
    import numpy as np
    from PIL import Image

    return float(np.asarray(Image.open(png_path).convert("L"), dtype=np.float64).std())


@pytest.mark.parametrize("model,node,inputs", [
    ("lenet5:mnist", "pad", ["-1"]),
    ("resnet20:cifar10", "layer1.0.add", ["maxpool", "layer1.0.bn2"]),
    ("googlenet", "inception3a.cat", ["inception3a.branch1.relu", "inception3a.branch2.1.relu",
                                      "inception3a.branch3.1.relu",
                                      "inception3a.branch4.1.relu"]),
    ("densenet121", "features.denseblock1.denselayer3.cat",
     ["features.pool0", "features.denseblock1.denselayer1.conv2",
      "features.denseblock1.denselayer2.conv2"]),
])
def test_the_overview_draws_every_operation_and_its_connections(server, browser, tmp_path,
                                                                 model, node, inputs):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(server)
    _open_lenet5(d)
    d.find_elements(By.CSS_SELECTOR, "#samples .sample")[0].click()
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#overview .node"))
    if model != "lenet5:mnist":
        Select(d.find_element(By.ID, "model")).select_by_value(model)
        name = model.split(":")[0]
        _wait(d, lambda d: d.find_element(By.ID, "card").text.startswith(name + " "),
              timeout=120)
    # one node per row of the layer table, each with its output's thumbnail
    _wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#overview .node"))
          == len(d.find_elements(By.CSS_SELECTOR, "tr.layer"))
          and d.find_elements(By.CSS_SELECTOR, f"#overview .node[data-name='{node}']"),
          timeout=120)
    target = d.find_element(By.CSS_SELECTOR, f"#overview .node[data-name='{node}']")
    names = d.execute_script(
        "return [...document.querySelectorAll('#overview .node')].map((n) => n.dataset.name)")
    got = [names[int(i)] if int(i) >= 0 else "-1"
           for i in target.get_attribute("data-inputs").split(",")]
    assert got == inputs
    arcs = len(d.find_elements(By.CSS_SELECTOR, "#overview svg.arcs path"))
    assert arcs == 0 if model == "lenet5:mnist" else arcs > 0
    spread = d.execute_script("""
        return [...document.querySelectorAll('#overview canvas.thumb')].slice(0, 40).map((c) => {
          const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let lo = 765, hi = 0;
          for (let i = 0; i < px.length; i += 4) {
            const v = px[i] + px[i + 1] + px[i + 2]; lo = Math.min(lo, v); hi = Math.max(hi, v);
          }
          return hi - lo;
        });""")
    assert sum(v > 30 for v in spread) >= 0.75 * len(spread), spread
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    target.click()  # opens it in the layer view
    _wait(d, lambda d: node in d.find_element(By.ID, "layer-title").text)
    shot = tmp_path / f"overview-{model.replace(':', '-')}.png"
    d.find_element(By.ID, "overview-panel").screenshot(str(shot))
    assert _non_blank(shot) > 10
    target_png = os.environ.get("CONVZOO_EXPLORE_SCREENSHOT")
    if target_png and model == "resnet20:cifar10":  # the README's: a photo, a tall window
        from PIL import Image
        from selenium.webdriver.support.expected_conditions import staleness_of

        old = d.find_element(By.CSS_SELECTOR, "#overview .node")
        d.find_element(By.CSS_SELECTOR, "#samples .sample[data-id='p:chelsea']").click()
        _wait(d, staleness_of(old))
        _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#overview .node"))
        d.set_window_size(1400, 1700)
        d.execute_script("document.getElementById('overview').scrollTop = 0; scrollTo(0, 0)")
        d.save_screenshot(str(shot))
        Image.open(shot).convert("RGB").quantize(colors=128).save(
            Path(target_png).with_name("explore-overview.png"), optimize=True)
    assert not d.find_element(By.ID, "status").text


def test_a_network_that_fails_to_load_leaves_the_page_as_it_was(server, browser):
    from selenium.webdriver.common.by import By

    d = browser
    d.get(server)
    select = _open_lenet5(d)
    d.find_elements(By.CSS_SELECTOR, "#samples .sample")[0].click()
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#top5 li.top-row"))
    card = d.find_element(By.ID, "card").text
    select.select_by_value("run:broken")
    _wait(d, lambda d: "did not load" in d.find_element(By.ID, "status").text)
    assert "run:broken" in d.find_element(By.ID, "status").text
    # The menu is back on the network the card and the layers still show ...
    assert select.first_selected_option.get_attribute("value") == "lenet5:mnist"
    assert d.find_element(By.ID, "card").text == card
    # ... and a later click works on it.
    d.find_element(By.CSS_SELECTOR, "tr.layer[data-type='Conv2d']").click()
    _wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#maps canvas.map")) == 6)
    assert not d.find_element(By.ID, "status").text
