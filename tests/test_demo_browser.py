"""The web demo driven in a real browser: Debian's headless Chromium through Playwright's Python API.

The demo runs in-process on a free 127.0.0.1 port. The test uploads an image, waits for the translation,
downloads it from the page and compares it pixel by pixel with ``Translator``; it also clicks an example
and checks the server-side upload cap, and drives a multi-domain model by its target domain. It saves a
screenshot to ``test-artifacts/demo.png``.

Needs /usr/bin/chromium (or ``UNPAIRED_CHROMIUM``) and the ``playwright`` package: ``scripts/install-browser.sh``
installs both (no browser download). Without them the tests are SKIPPED, unless ``UNPAIRED_REQUIRE_BROWSER=1``
(set it in CI) turns the skip into a failure.

``UNPAIRED_DEMO_RUN=RUN`` uses an existing run folder instead of a 2-step one (for a README screenshot),
and ``UPDATE_DOCS_IMAGES=1`` copies the screenshot over ``docs/images/demo.png`` (otherwise it is copied
only when that file does not exist yet).
"""

import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

CHROMIUM = os.environ.get("UNPAIRED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 90_000


def _missing() -> str:
    problems = []
    if not Path(CHROMIUM).exists():
        problems.append(f"no Chromium at {CHROMIUM}")
    for module in ("playwright", "gradio"):
        try:
            __import__(module)
        except ImportError:
            problems.append(f"python package {module!r} not installed")
    return "; ".join(problems)


_MISSING = _missing()
if _MISSING:
    _REASON = f"BROWSER TEST NOT RUN: {_MISSING}. Install them with `make browser` (scripts/install-browser.sh; apt-get, needs root)"
    if os.environ.get("UNPAIRED_REQUIRE_BROWSER") == "1":
        raise RuntimeError(_REASON + " (UNPAIRED_REQUIRE_BROWSER=1 forbids skipping)")
    print(f"\n*** {_REASON} ***", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

from unpaired.inference import Translator  # noqa: E402

UPLOAD_CAP_MB = 1.0
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # gradio's own pandas deprecations


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """A run folder: UNPAIRED_DEMO_RUN, or a tiny AttentionGAN trained for 2 steps (attention to overlay)."""
    if os.environ.get("UNPAIRED_DEMO_RUN"):
        return Path(os.environ["UNPAIRED_DEMO_RUN"])
    root = tmp_path_factory.mktemp("demo")
    data, run = root / "data", root / "run"

    def unpaired(*args):
        subprocess.run([sys.executable, "-m", "unpaired", *map(str, args)], cwd=REPO, check=True,
                       capture_output=True, timeout=600)

    unpaired("data", "synth", data, "--size", 32, "--n-train", 4, "--n-test", 2)
    sets = []
    for s in ("model.name=attentiongan", "model.ngf=8", "model.ndf=8", "model.n_blocks=2", "model.n_masks=3",
              "data.load_size=36", "data.crop_size=32", "data.num_workers=0", "train.steps=2",
              "train.batch_size=2", "train.device=cpu"):
        sets += ["--set", s]
    unpaired("train", "quick", "--data", data, "--out", run, "--no-progress", *sets)
    return run


@pytest.fixture(scope="module")
def server(demo_run, tmp_path_factory):
    """(url, translator, examples): the demo served in-process on 127.0.0.1."""
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    from unpaired.demo import build_demo, find_examples, launch_demo

    translator = Translator.load(demo_run)
    examples = find_examples(demo_run)
    assert {d for _, d in examples} == {"AtoB", "BtoA"}, "the run's testA/ and testB/ images are the examples"
    demo = build_demo(translator, examples, max_upload_mb=UPLOAD_CAP_MB)
    port = _free_port()
    launch_demo(demo, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/", translator, examples
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one running instance)."""
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(server, browser):
    url = server[0]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.hosts = set()
    pg.on("request", lambda r: pg.hosts.add(r.url.split("/")[2]))
    pg.goto(url)
    pg.wait_for_selector("#translate-button")
    yield pg
    context.close()


def _shown_image(page, selector: str) -> Image.Image:
    """The image an <img> inside ``selector`` shows, fetched as the browser fetched it."""
    src = page.get_attribute(f"{selector} img", "src")
    response = page.request.get(src)
    assert response.ok, (src, response.status)
    return Image.open(io.BytesIO(response.body())).convert("RGB")


def _max_diff(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size, (a.size, b.size)
    return int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())


def test_upload_shows_the_translation_and_overlay(server, page):
    url, translator, examples = server
    upload = next(p for p, d in examples if d == "AtoB")
    page.set_input_files("#input-image input[type=file]", upload)
    page.wait_for_selector("#input-image img")
    page.click("#translate-button")
    page.wait_for_function("document.querySelector('#status')?.innerText.includes('AtoB')", timeout=TIMEOUT_MS)
    page.wait_for_selector("#translation img")
    page.wait_for_selector("#attention-overlay img")

    expected = translator.translate(Image.open(upload).convert("RGB"), "AtoB")
    assert _max_diff(_shown_image(page, "#translation"), expected.image) <= 1
    if expected.attention is not None:
        assert _max_diff(_shown_image(page, "#attention-overlay"), expected.overlay()) <= 1
    if expected.masks is not None and len(expected.masks) > 1:
        assert page.locator("#attention-masks img").count() >= len(expected.masks)

    page.wait_for_timeout(300)  # let the gallery settle before the picture
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "demo.png"), full_page=True)
    docs_image = REPO / "docs" / "images" / "demo.png"
    if not docs_image.exists() or os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        docs_image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts / "demo.png", docs_image)
    assert page.hosts == {url.split("/")[2]}, f"the page contacted other hosts: {page.hosts}"


def test_example_click_translates_the_other_direction(server, page):
    _, translator, examples = server
    path = next(p for p, d in examples if d == "BtoA")  # the first domain-B test image
    page.locator("#examples-BtoA button.gallery-item").first.click()
    page.wait_for_function("document.querySelector('#status')?.innerText.includes('BtoA')", timeout=TIMEOUT_MS)
    assert page.locator('#direction input[value="BtoA"]').is_checked()
    expected = translator.translate(Image.open(path).convert("RGB"), "BtoA")
    assert _max_diff(_shown_image(page, "#translation"), expected.image) <= 1


def test_upload_cap_is_enforced_by_the_server(server, page):
    url = server[0]
    too_big = {"name": "big.png", "mimeType": "image/png", "buffer": b"\0" * int((UPLOAD_CAP_MB + 0.5) * 2 ** 20)}
    assert page.request.post(url + "gradio_api/upload", multipart={"files": too_big}).status == 413
    small = {"name": "small.png", "mimeType": "image/png", "buffer": b"\0" * 1024}
    assert page.request.post(url + "gradio_api/upload", multipart={"files": small}).status == 200


def test_multi_domain_demo_translates_to_the_chosen_target(tmp_path, browser):
    """A multi-domain model: the radio lists the target domains; an example of one domain goes to the next."""
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path / "gradio")
    from unpaired.demo import build_demo, find_examples, launch_demo

    data, run = tmp_path / "data", tmp_path / "run"
    subprocess.run([sys.executable, "-m", "unpaired", "data", "synth", str(data), "--domains", "3", "--size", "32",
                    "--n-train", "2", "--n-test", "2"], cwd=REPO, check=True, capture_output=True, timeout=600)
    sets = []
    for s in ("model.ngf=8", "model.ndf=8", "model.n_blocks=1", "model.n_layers_d=3", "model.image_size=32",
              "data.load_size=32", "data.crop_size=32", "data.num_workers=0", "train.steps=1", "train.batch_size=2"):
        sets += ["--set", s]
    subprocess.run([sys.executable, "-m", "unpaired", "train", "faces-expressions-attentiongan-multi", "--data",
                    str(data), "--out", str(run), "--no-progress", *sets], cwd=REPO, check=True, capture_output=True,
                   timeout=600)
    translator = Translator.load(run)
    examples = find_examples(run, domains=translator.domains)
    assert [(Path(p).parent.name, target) for p, target in examples[::2]] == [
        ("hue000", "hue120"), ("hue120", "hue240"), ("hue240", "hue000")]
    demo = build_demo(translator, examples)
    port = _free_port()
    launch_demo(demo, "127.0.0.1", port, block=False)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#translate-button")
        assert page.locator("#direction input").count() == 3
        page.locator("#examples-hue000 button.gallery-item").first.click()  # a hue240 image, to hue000
        page.wait_for_function("document.querySelector('#status')?.innerText.includes('to hue000')",
                               timeout=TIMEOUT_MS)
        assert page.locator('#direction input[value="hue000"]').is_checked()
        source = next(p for p, target in examples if target == "hue000")
        expected = translator.translate(Image.open(source).convert("RGB"), target="hue000")
        assert _max_diff(_shown_image(page, "#translation"), expected.image) <= 1
        page.locator('#direction input[value="hue120"]').check()  # same input, another target
        page.click("#translate-button")
        page.wait_for_function("document.querySelector('#status')?.innerText.includes('to hue120')",
                               timeout=TIMEOUT_MS)
        expected = translator.translate(Image.open(source).convert("RGB"), target="hue120")
        assert _max_diff(_shown_image(page, "#translation"), expected.image) <= 1
    finally:
        context.close()
        demo.close()
