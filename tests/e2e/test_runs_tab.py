"""The Runs tab in headless Chromium: page through many runs, filter, open one (curves, results with a
confusion matrix), compare three, clone one into Train, delete one. Screenshots land in
tests/e2e/screenshots/ (runs-*.png) for a person to look at.

The workspace is seeded before the app starts with finished runs in the shape workers write them
(rows, metric points, final metrics); real training through the browser is test_browser.py's job.

    .venv/bin/python -m pytest tests/e2e/test_runs_tab.py -q -p no:cacheprovider
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from backend.config import RunConfig
from backend.data import import_file
from backend.services import Services
from db import MetricPoint, Run, RunStatus
from db.models import utcnow
from tests.conftest import EXAMPLES
from tests.e2e.conftest import running_app
from tests.e2e.test_browser import SHOTS, _choose, _open_tab, browser, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXTRA_RUNS = 60


def _seed(services: Services) -> dict[str, int]:
    """Finished runs like workers leave them: 3 LoRA variants, a classifier, a failure, and many more."""
    services.ensure_examples()
    import_file(services.database, services.workspace, EXAMPLES / "support_tickets.csv", name="tickets")
    ids: dict[str, int] = {}
    base = RunConfig(dataset="identity-example").to_dict()
    now = utcnow()
    with services.database.session() as s:

        def add(key: str, status: RunStatus, config: dict, metrics: dict, curve_scale: float = 1.0, **extra):
            run = Run(
                name=key, status=status, task=config["task"], model=config["model"], method=config["method"],
                dataset_id=1, config=config, metrics=metrics, step=40, total_steps=40, epoch=4.0,
                created_at=now - timedelta(minutes=30), started_at=now - timedelta(minutes=29),
                finished_at=now - timedelta(minutes=26), devices="cpu", **extra,
            )  # fmt: skip
            s.add(run)
            s.flush()
            for step in range(1, 41):
                loss = 2.6 * math.exp(-step / (12 * curve_scale)) + 0.3
                lr = 5e-4 * 0.5 * (1 + math.cos(math.pi * step / 40))
                s.add(MetricPoint(run_id=run.id, step=step, name="loss", value=loss))
                s.add(MetricPoint(run_id=run.id, step=step, name="learning_rate", value=lr))
                if step % 10 == 0:
                    s.add(MetricPoint(run_id=run.id, step=step, name="eval_loss", value=loss + 0.15))
            ids[key] = run.id

        for i, (rank, lr) in enumerate([(8, 2e-4), (16, 5e-4), (32, 1e-3)]):
            config = {**base, "lora_rank": rank, "learning_rate": lr}
            add(f"lora-r{rank}", RunStatus.completed, config, _final(1.1 - 0.3 * i), curve_scale=1.5 - 0.4 * i)
        classifier = {**base, "task": "text-classification", "model": "all-MiniLM-L6-v2", "method": "full"}
        classifier["dataset"] = "tickets"  # not among Train's chat datasets: a clone must switch the list
        cm = {"labels": ["negative", "neutral", "positive"], "matrix": [[41, 6, 3], [5, 30, 9], [2, 7, 47]]}
        scores = {name: {"precision": 0.8367, "recall": 0.82, "f1": 0.83, "support": 50} for name in cm["labels"]}
        results = {**_final(0.52), "eval_accuracy": 0.8, "confusion_matrix": cm, "per_class": scores}
        add("sentiment", RunStatus.completed, classifier, results)
        add("oom", RunStatus.failed, base, {}, reason="Out of memory: lower the batch size ...\nMemoryError")
        for i in range(EXTRA_RUNS):
            add(f"sweep-{i:02d}", RunStatus.completed, {**base, "seed": i}, _final(0.9 + i / 100))
    return ids


def _expect_lines(pg, count: int) -> None:
    """The overlaid plot draws `count` lines, each in a visible colour of its own (unused slots draw nothing)."""
    paths = pg.locator(".block").filter(has_text="Curves, overlaid").locator("svg g.mark-line path")
    drawn = "ps => ps.filter(p => (p.getAttribute('d') || '').includes('L')).map(p => getComputedStyle(p).stroke)"
    expect(paths.first).to_be_attached(timeout=20_000)
    for _ in range(40):
        strokes = paths.evaluate_all(drawn)
        if len(strokes) == count:
            break
        pg.wait_for_timeout(500)
    assert len(strokes) == count and len(set(strokes)) == count and not set(strokes) & {"none", ""}, strokes


def _final(loss: float) -> dict:
    return {"final_loss": round(loss, 4), "train_loss": round(loss + 0.2, 4), "tokens_per_second": 260.0,
            "precision": "bf16", "device": "cpu", "train_seconds": 180.0, "trainable_params": 4_884_480,
            "total_params": 139_399_488}  # fmt: skip


@pytest.fixture(scope="module")
def seeded_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-runs")
    ids = _seed(Services.open(tmp / "ws"))
    with running_app(tmp, workspace=tmp / "ws") as app:
        yield app, ids


def _shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"runs-{name}.png"), full_page=True)


def test_runs_tab_list_detail_compare_clone_delete(seeded_app, page):  # noqa: F811
    app, ids = seeded_app
    total = EXTRA_RUNS + 5
    page.on("pageerror", lambda e: print(f"[browser error] {e}"))
    page.goto(app.url)
    _open_tab(page, "Runs")

    # The list: a page of 25 of 65 runs, newest first, paged on the server.
    expect(page.get_by_text(f"Page 1 of 3 · {total} runs")).to_be_visible(timeout=20_000)
    table = page.get_by_role("grid", name=re.compile("^Runs"))
    expect(table.get_by_role("row").nth(1)).to_contain_text(f"sweep-{EXTRA_RUNS - 1}")  # the newest first
    _shot(page, "list")
    page.get_by_role("button", name="Next ▶").click()
    expect(page.get_by_text(f"Page 2 of 3 · {total} runs")).to_be_visible()

    # Filter by status; search by name.
    _choose(page, "Status", "failed")
    expect(page.get_by_text("Page 1 of 1 · 1 runs")).to_be_visible()
    expect(table.get_by_role("row").filter(has_text="oom")).to_have_count(1)
    _choose(page, "Status", "completed")
    search = page.get_by_label("Search")
    search.fill("sentiment")
    search.press("Enter")
    expect(page.get_by_text("Page 1 of 1 · 1 runs")).to_be_visible()

    # Open the classifier by clicking its row: header, results with the confusion matrix.
    table.get_by_role("row").filter(has_text="sentiment").get_by_text("sentiment").click()
    header = page.get_by_role("heading", name=re.compile(rf"^Run {ids['sentiment']}: sentiment"))
    expect(header).to_be_visible()
    page.get_by_role("tab", name="Results").click()
    expect(page.get_by_text("Confusion matrix")).to_be_visible()
    expect(page.get_by_role("cell", name="47", exact=True)).to_be_visible()
    scores = page.get_by_role("table").filter(has_text="eval_accuracy").first
    expect(scores.locator("tbody tr").first).to_contain_text("eval_accuracy")  # the score that judges it, first
    expect(page.get_by_role("cell", name="0.8367")).to_have_count(3)  # per-class scores, one row per class
    _shot(page, "detail-results")
    page.get_by_role("tab", name="Curves").click()
    _shot(page, "detail-curves")

    # Compare three LoRA runs: overlaid curves, differing settings highlighted, results side by side.
    page.get_by_role("tab", name="Compare", exact=True).click()
    chooser = page.get_by_role("combobox", name="Runs to compare")
    for key in ("lora-r8", "lora-r16", "lora-r32"):  # typing filters the long list
        chooser.click()
        chooser.press_sequentially(key)
        page.get_by_role("option", name=re.compile(rf"^#{ids[key]} {key} ")).click()
        page.keyboard.press("Escape")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_text("2 setting(s) differ:")).to_be_visible(timeout=20_000)
    expect(page.locator("table.tb-diff tr").filter(has_text="lora_rank")).to_contain_text("32")
    results = page.get_by_role("grid", name="Results side by side")
    expect(results.get_by_role("row").filter(has_text="final_loss")).to_contain_text("0.5")
    expect(page.get_by_text(f"#{ids['lora-r32']} lora-r32", exact=True).first).to_be_visible()  # the legend
    _expect_lines(page, 3)
    _shot(page, "compare")
    # A second comparison with a run the first did not have: every line is drawn again, in its own colour.
    chooser.click()
    chooser.press_sequentially("sweep-07")
    page.get_by_role("option", name=re.compile(rf"^#{ids['sweep-07']} sweep-07 ")).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_text(f"#{ids['sweep-07']} sweep-07", exact=True).first).to_be_visible(timeout=20_000)
    _expect_lines(page, 4)
    _shot(page, "compare-again")

    # Clone: the run's settings fill the Train form.
    page.get_by_role("tab", name="All runs").click()
    _choose(page, "Open run", re.compile(rf"^#{ids['sentiment']} "))
    expect(page.get_by_role("heading", name=re.compile(rf"^Run {ids['sentiment']}:"))).to_be_visible()
    page.get_by_role("button", name="Clone to Train").click()  # a classifier: Train's lists follow its task
    expect(page.get_by_role("combobox", name="Model")).to_have_value("all-MiniLM-L6-v2")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("tickets")
    expect(page.get_by_role("radio", name="Full (all weights)")).to_be_checked()
    page.wait_for_timeout(1000)
    expect(page.get_by_text("not in the list of choices")).to_have_count(0)
    _open_tab(page, "Runs")
    search.fill("lora-r32")
    search.press("Enter")
    expect(page.get_by_text("Page 1 of 1 · 1 runs")).to_be_visible()  # the list has settled on the one run
    table.get_by_role("row").filter(has_text="lora-r32").get_by_text("lora-r32").click()
    expect(page.get_by_role("heading", name=re.compile(rf"^Run {ids['lora-r32']}:"))).to_be_visible(timeout=20_000)
    page.get_by_role("button", name="Clone to Train").click()
    expect(page.get_by_role("tab", name="Train", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("spinbutton", name="LoRA rank")).to_have_value("32")

    # Delete asks first, then removes the run from the list.
    _open_tab(page, "Runs")
    page.get_by_role("button", name="Delete run…").click()  # asks first, in the page
    page.get_by_role("button", name="Yes, delete it and its files").click()
    expect(page.get_by_text(f"Run {ids['lora-r32']} deleted with its files.").first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("Page 1 of 1 · 0 runs")).to_be_visible(timeout=10_000)
    _shot(page, "after-delete")
