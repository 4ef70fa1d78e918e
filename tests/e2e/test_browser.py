"""End to end: the real app in headless Chromium, driven the way a first-time user would.

Start it (a subprocess on a free port with a throw-away workspace), import a dataset, train 3 steps of
LoRA on the bundled model, chat with the result and export it. A full-page screenshot after each stage
lands in tests/e2e/screenshots/ (git-ignored) for a human to look at.

    .venv/bin/python -m pytest tests/e2e -x -q -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(__file__).resolve().parent / "screenshots"
TRAIN_TIMEOUT = 240
CHAT_TIMEOUT = 120
EXPORT_TIMEOUT = 420  # a merged SmolLM2 is written, loaded back and checked (greedy answers too) on 2 cores


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:  # keep a picture of where it stopped
        SHOTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(SHOTS / "99-failure.png"), full_page=True)
    context.close()


@pytest.fixture(scope="module")
def shot():
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    count = 0

    def take(page, name: str) -> Path:
        nonlocal count
        count += 1
        path = SHOTS / f"{count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def _choose(page, combobox: str, option: str | re.Pattern) -> None:
    """Gradio 6 dropdowns are comboboxes: open the list, then click the option."""
    page.get_by_role("combobox", name=combobox).click()
    page.get_by_role("option", name=option).first.click()


def _open_tab(page, name: str) -> None:
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def test_first_time_user_flow(app_url, page, shot):
    page.on("pageerror", lambda e: print(f"[browser error] {e}"))

    # 1. Landing page: Train tab with the quick start; bundled model and the identity example preselected.
    page.goto(app_url)
    expect(page.get_by_role("tab", name="Train", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("Quick start.")).to_be_visible()
    expect(page.get_by_role("combobox", name="Model")).to_have_value("SmolLM2-135M-Instruct")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("identity-example")
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    shot(page, "landing")

    # 2. Datasets: upload the identity file under a new name and import it.
    _open_tab(page, "Datasets")
    datasets_table = page.get_by_role("grid", name="Datasets", exact=True)
    expect(datasets_table.get_by_role("row").filter(has_text="identity-example")).to_have_count(1)
    page.get_by_role("button", name="Import", exact=True).click()  # no file chosen: a warning, nothing lost
    no_file = page.get_by_text("Choose a file or zip, or type a path or hub id, first.")
    expect(no_file.first).to_be_visible(timeout=10_000)
    expect(datasets_table.get_by_role("row").filter(has_text="identity-example")).to_have_count(1)
    upload = page.get_by_role("button", name="Click to upload or drop files")
    upload.locator("input[type=file]").set_input_files(str(EXAMPLES / "identity.json"))
    expect(page.get_by_text("identity.json").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Detected: identity.json → alpaca"))).to_be_visible(timeout=10_000)
    expect(page.get_by_label("Label column")).to_be_hidden()  # chat data has no columns to map
    page.get_by_label("Name (optional)").fill("identity-upload")
    page.get_by_role("button", name="Import", exact=True).click()
    status = page.get_by_text(re.compile(r"^Imported identity-upload"))
    expect(status).to_be_visible(timeout=30_000)
    expect(status).to_contain_text("120 rows")
    expect(status).to_contain_text("same content as dataset 'identity-example'")  # duplicate detected, still imported
    expect(page.get_by_text("I'm Tuna, an AI assistant made by Tuneboard Labs").first).to_be_visible()  # chat turns
    expect(page.get_by_role("grid", name="Splits").get_by_role("row").filter(has_text="train")).to_contain_text("120")
    expect(datasets_table.get_by_role("row").filter(has_text="identity-upload")).to_have_count(1)
    shot(page, "dataset-imported")
    # Token lengths under the bundled model's tokenizer (its first load says what it is doing).
    page.get_by_role("button", name="Measure token lengths").click()
    expect(page.get_by_text(re.compile(r"^120 rows measured: mean \d+"))).to_be_visible(timeout=180_000)

    # 3. Train: the new dataset, 3 steps; the UI moves to Runs and follows the run to the end.
    _open_tab(page, "Train")
    _choose(page, "Dataset", "identity-upload")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("identity-upload")
    page.get_by_role("button", name=re.compile("^Hyperparameters")).click()
    max_steps = page.get_by_role("spinbutton", name="Max steps")
    expect(max_steps).to_be_visible()
    for _ in range(3):  # on a loaded machine the accordion may still be settling when we first type
        max_steps.fill("3")
        max_steps.press("Tab")
        page.wait_for_timeout(500)
        if max_steps.input_value() == "3":
            break
    expect(max_steps).to_have_value("3")
    shot(page, "train-form")
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("tab", name="Runs", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("combobox", name="Open run")).to_have_value(re.compile(r"^#1 "))
    header = page.get_by_test_id("markdown").filter(has=page.get_by_role("heading", name=re.compile(r"^Run 1:")))
    expect(header).to_contain_text("dataset identity-upload", timeout=30_000)
    shot(page, "run-started")
    finished = re.compile(r"\b(completed|failed|interrupted|cancelled)\b")
    expect(header).to_contain_text(finished, timeout=TRAIN_TIMEOUT * 1000)
    expect(header).to_contain_text("completed")
    expect(header).to_contain_text("step 3/3")
    plot = page.locator(".block").filter(has_text="Training loss")
    expect(plot.locator("svg, canvas").first).to_be_visible()
    curve = plot.locator("svg g.mark-line path").first
    expect(curve).to_be_attached()  # the curve itself, not just axes, and drawn in a colour a person sees
    assert curve.evaluate("p => getComputedStyle(p).stroke") not in ("none", "")
    page.get_by_role("tab", name="Log", exact=True).click()
    expect(page.get_by_label("Log (last lines)")).to_have_value(re.compile("completed"), timeout=10_000)
    runs_table = page.locator(".block").filter(has_text="Runs (click a row to open it)")
    expect(runs_table.get_by_role("row").filter(has_text="lora-identity-upload")).to_contain_text("completed")
    shot(page, "run-completed")

    # 4. Playground, without a reload: the new run is offered as soon as the tab opens.
    _open_tab(page, "Playground")
    run_box = page.get_by_role("combobox", name="Model (a completed run)")
    shot(page, "playground-same-page")
    expect(run_box).to_have_value(re.compile(r"^#1 lora-identity-upload"))
    page.get_by_placeholder("Type a message and press Enter").fill("Who are you?")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_test_id("user").last).to_contain_text("Who are you?", timeout=CHAT_TIMEOUT * 1000)
    box = page.get_by_placeholder("Type a message and press Enter")
    box.fill("And what can you do?")  # the next question, typed and sent while the model loads and answers
    page.get_by_role("button", name="Send", exact=True).click()
    # Sent after the first reply (not dropped, and not wiped from the box by the streamed updates meanwhile).
    expect(page.get_by_test_id("user")).to_have_count(2, timeout=CHAT_TIMEOUT * 1000)
    expect(page.get_by_test_id("user").last).to_contain_text("And what can you do?")
    expect(page.get_by_test_id("bot")).to_have_count(2, timeout=CHAT_TIMEOUT * 1000)
    answer = page.get_by_test_id("bot").last
    expect(answer).to_have_text(re.compile(r"\w"), timeout=CHAT_TIMEOUT * 1000)
    # Let the stream finish: the answer stops growing.
    previous, stable_since = "", time.monotonic()
    deadline = time.monotonic() + CHAT_TIMEOUT
    while time.monotonic() < deadline and time.monotonic() - stable_since < 3:
        text = answer.inner_text()
        if text != previous:
            previous, stable_since = text, time.monotonic()
        page.wait_for_timeout(500)
    assert previous.strip(), "the assistant answered with empty text"
    shot(page, "playground-answer")
    # Side by side: choosing the run puts its column beside its base model's (answers: tests/test_playground.py).
    page.get_by_role("tab", name="Side by side", exact=True).click()
    _choose(page, "Fine-tuned runs to compare (one or two)", re.compile(r"^#1 "))
    page.keyboard.press("Escape")
    expect(page.get_by_text("Base model: SmolLM2-135M-Instruct", exact=True)).to_be_visible()
    expect(page.get_by_text("#1 lora-identity-upload", exact=True).last).to_be_visible()
    shot(page, "playground-side-by-side")

    # 5. Export: the merged model, verified and offered as a zip.
    _open_tab(page, "Export")
    export_run = page.get_by_role("combobox", name="Run (completed)")
    if not export_run.input_value():
        _choose(page, "Run (completed)", re.compile(r"^#1 "))
    expect(export_run).to_have_value(re.compile(r"^#1 lora-identity-upload"))
    page.locator("label").filter(has_text=re.compile(r"^\s*Merged model")).click()
    expect(page.locator("input[type=radio][value=merged]")).to_be_checked()
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.get_by_text(re.compile(r"^Verified by loading it back"))).to_be_visible(timeout=EXPORT_TIMEOUT * 1000)
    expect(page.get_by_text(re.compile(r"^Exported merged of run 1"))).to_be_visible()
    download = page.locator(".block").filter(has=page.get_by_text("Download", exact=True))
    expect(download).to_contain_text(re.compile(r"\.zip"))
    shot(page, "exported")
    with page.expect_download() as saving:
        download.get_by_role("link").first.click()
    saved = Path(saving.value.path())
    with zipfile.ZipFile(saved) as archive:  # the whole merged model arrives, loadable
        assert {"config.json", "model.safetensors"} <= {Path(n).name for n in archive.namelist()}
    # served from the exports folder as it lies, not copied into Gradio's cache on each download
    copies = list(Path(os.environ["GRADIO_TEMP_DIR"]).rglob("merged*.zip"))  # the export itself, copied
    assert not copies, copies
