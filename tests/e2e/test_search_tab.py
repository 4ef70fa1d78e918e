"""The Search tab in headless Chromium: a refused space changes nothing, a random search of the tiny model
runs its trials as runs, the study page fills in, and "Use best" copies the best trial into Train.
Screenshots land in tests/e2e/screenshots/ (search-*.png).

    .venv/bin/python -m pytest tests/e2e/test_search_tab.py -q -p no:cacheprovider
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backend.search.results import list_studies, study_report
from backend.services import Services
from tests.e2e.conftest import running_app
from tests.e2e.test_browser import SHOTS, _open_tab, browser, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SEARCH_TIMEOUT = 300


@pytest.fixture(scope="module")
def search_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-search")
    with running_app(tmp) as app:
        yield app


def _shot(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"search-{name}.png"), full_page=True)


def test_search_tab_refuses_a_bad_space_then_runs_a_search_and_copies_the_best(search_app, page, tiny_model):  # noqa: F811
    page.goto(search_app.url)
    _open_tab(page, "Search")
    model = page.locator("input[aria-label='Model']:visible")
    model.click()
    model.fill(str(tiny_model))
    model.press("Enter")
    page.get_by_role("spinbutton", name="Max steps").fill("4")
    page.get_by_role("spinbutton", name="Trials").fill("2")

    # A grid cannot walk the default continuous learning-rate range: refused by name, nothing recorded.
    page.get_by_role("radio", name="Grid").check()
    page.get_by_role("button", name="Start search").click()
    expect(page.get_by_text(re.compile("grid search: 'learning_rate' is a continuous range"))).to_be_visible()
    assert list_studies(Services.open(search_app.workspace).database) == []  # nothing recorded

    page.get_by_role("radio", name="Random").check()
    page.get_by_role("button", name="Start search").click()
    expect(page.get_by_text(re.compile(r"Search 1 started: 2 trials"))).to_be_visible(timeout=30_000)
    summary = page.get_by_text(re.compile(r"^2 of 2 trials done"))
    expect(summary).to_be_visible(timeout=SEARCH_TIMEOUT * 1000)
    expect(page.get_by_text(re.compile(r"Search 1: .* · completed"))).to_be_visible(timeout=30_000)
    table = page.get_by_role("grid", name="Trial results")
    expect(table).to_contain_text("complete")
    services = Services.open(search_app.workspace)
    report = study_report(services.database, services.workspace, 1)
    assert [t["state"] for t in report["trials"]] == ["complete", "complete"]
    best = page.get_by_text(re.compile(r"^Best: .* in run (\d+) with"))
    expect(best).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    _shot(page, "completed")
    best_run = int(re.search(r"in run (\d+)", best.inner_text()).group(1))
    best_rank = re.search(r"lora_rank = (\d+)", best.inner_text()).group(1)

    page.get_by_role("button", name="Use best in Train").click()
    expect(page.get_by_role("tab", name="Train", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text(f"The settings of run {best_run}, the best trial, are in the Train tab.")).to_be_visible()
    rank = page.locator("input[aria-label='LoRA rank']:visible")
    expect(rank).to_have_value(best_rank)

    _open_tab(page, "Runs")  # each trial is an ordinary run
    expect(page.locator("body")).to_contain_text("search1-trial1")
