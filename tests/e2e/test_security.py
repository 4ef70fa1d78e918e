"""Hostile requests against the running app: logins on every route, confined files, upload limits, demo mode.

Two apps: one with `--auth-file` (and a small upload limit), one `--demo RUN` over a workspace with a
tiny trained run. Every request here is a real HTTP request (httpx) or a real gradio_client call.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from backend.auth import add_user
from tests.conftest import EXAMPLES, ROOT, cli_json
from tests.e2e.conftest import running_app
from webui.guards import PUBLIC_EXACT, PUBLIC_PREFIXES
from webui.i18n import messages

pytestmark = pytest.mark.e2e

USER, PASSWORD = "alice", "correct horse battery"
WRONG = "not the password 123"
SECRET = "exports/shared/notes.txt"  # a file that may be downloaded, once logged in


def _gradio_routes() -> list[tuple[str, str]]:
    """(method, path) of every HTTP route Gradio 6 serves, from its own route table."""
    import gradio as gr
    from gradio.routes import App

    with gr.Blocks() as blocks:
        gr.Textbox()
    app = App.create_app(blocks)
    routes = []
    for route in app.routes:
        for r in getattr(getattr(route, "original_router", None), "routes", [route]):
            for method in sorted(getattr(r, "methods", None) or []):
                routes.append((method, r.path))
    return routes


def _fill(path: str, file_path: str) -> str:
    path = re.sub(r"\{[a-z_]+:path\}", file_path.lstrip("/"), path)
    return re.sub(r"\{[a-z_]+\}", "x", path)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secured")
    users = tmp / "users.txt"
    add_user(users, USER, PASSWORD)
    ws = tmp / "ws"
    (ws / Path(SECRET).parent).mkdir(parents=True)
    (ws / SECRET).write_text("exported notes")
    with running_app(tmp, "--auth-file", str(users), "--max-file-size", "100kb", workspace=ws) as app:
        yield app


@pytest.fixture
def session(secured):
    with httpx.Client(base_url=secured.url, timeout=30) as http:
        assert http.post("login", data={"username": USER, "password": WRONG}).status_code >= 400
        assert http.post("login", data={"username": USER, "password": PASSWORD}).status_code == 200
        yield http


def test_every_route_refuses_a_request_without_login(secured):
    export = str(secured.workspace / SECRET)
    refused, public = [], []
    with httpx.Client(base_url=secured.url.rstrip("/"), timeout=30) as http:
        for method, path in _gradio_routes():
            url = _fill(path, export)
            response = http.request(method, url, json={} if method == "POST" else None)
            if path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES):
                public.append(path)
                assert "exported notes" not in response.text and "identity-example" not in response.text
            else:
                refused.append(path)
                assert response.status_code == 401, f"{method} {url}: {response.status_code} {response.text[:200]}"
        assert len(refused) > 40 and "/gradio_api/queue/join" in refused and "/config" in refused
        page = http.get("/")
        assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
        assert "tabs.train" not in page.text  # the login page carries none of the app
        assert http.get("/gradio_api/file=" + export).status_code == 401
        assert http.get("/gradio_api/file=" + export.replace("/", "%2F")).status_code == 401


def test_gradio_client_needs_the_credentials(secured):
    with pytest.raises(Exception):  # noqa: B017 (gradio_client raises different types per failure)
        Client(secured.url, verbose=False)
    with pytest.raises(Exception):  # noqa: B017
        Client(secured.url, auth=(USER, WRONG), verbose=False)
    client = Client(secured.url, auth=(USER, PASSWORD), verbose=False)
    assert [d["name"] for d in client.predict(api_name="/datasets_list")] == ["identity-example"]


def test_downloads_are_confined_to_exports(secured, session):
    ws = secured.workspace
    assert session.get(f"gradio_api/file={ws / SECRET}").text == "exported notes"
    hostile = [
        str(ws / "tuneboard.db"),
        str(ws / "exports" / ".." / "tuneboard.db"),
        str(ws / "exports") + "/%2e%2e/tuneboard.db",
        "/etc/passwd",
        str(ROOT / "README.md"),
        str(ROOT / "backend" / "auth.py"),
        "../../../../etc/passwd",
        str(next((ws / "datasets").rglob("*.parquet"))),
    ]
    for path in hostile:
        response = session.get(f"gradio_api/file={path}")
        assert response.status_code in (403, 404), f"{path}: {response.status_code}"
        assert "SQLite format" not in response.text and "root:" not in response.text


def test_uploads_are_limited_and_api_paths_cannot_point_outside(secured, session):
    big = b"[" + b'{"instruction": "q", "output": "a"},' * 4000 + b"{}]"  # ~150 kB, over the 100 kB limit
    response = session.post("gradio_api/upload", files={"files": ("big.json", big, "application/json")})
    assert response.status_code == 413, response.text[:200]
    evil = session.post("gradio_api/upload", files={"files": ("../../evil.json", b"[]", "application/json")})
    assert evil.status_code == 200 and all(Path(p).name == "evil.json" for p in evil.json())
    assert not (secured.workspace.parent / "evil.json").exists()
    # The dataset endpoint takes an uploaded file; a path to the database instead is refused.
    for path in (str(secured.workspace / "tuneboard.db"), "/etc/passwd"):
        file_data = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.json"}
        call = session.post("gradio_api/call/add_dataset", json={"data": [file_data, "stolen"]})
        events = session.get(f"gradio_api/call/add_dataset/{call.json()['event_id']}").text
        assert "event: error" in events, events[:300]
    client = Client(secured.url, auth=(USER, PASSWORD), verbose=False)
    assert [d["name"] for d in client.predict(api_name="/datasets_list")] == ["identity-example"]


def test_no_password_reaches_the_log(secured, session):
    session.post("login", data={"username": "mallory", "password": WRONG})
    log = secured.log.read_text(errors="replace")
    assert "failed login for user 'mallory'" in log
    assert PASSWORD not in log and WRONG not in log and "scrypt$" not in log


# -- demo mode ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("demo")
    ws = tmp / "ws"
    cli_json(ws, "datasets", "add", str(EXAMPLES / "identity.json"), "--name", "identity")
    run = cli_json(ws, "train", "--dataset", "identity", "--model", str(tiny_model), "--max-steps", "2", "--wait")
    assert run["status"] == "completed", run
    (ws / "exports" / "1").mkdir(parents=True)
    (ws / "exports" / "1" / "model.safetensors").write_bytes(b"weights")
    with running_app(tmp, "--demo", str(run["id"]), workspace=ws) as app:
        yield app, run["id"]


@pytest.mark.slow
def test_demo_serves_only_the_playground_and_chat(demo):
    app, run_id = demo
    client = Client(app.url, verbose=False)
    assert set(client.view_api(return_format="dict", print_info=False)["named_endpoints"]) == {"/chat"}
    reply = client.predict(run_id, "你是谁？", 8, api_name="/chat")
    assert reply["run_id"] == run_id and isinstance(reply["reply"], str)
    with pytest.raises(Exception, match=f"serves run {run_id} only"):
        client.predict(run_id + 1, "hi", 8, api_name="/chat")
    for name in ("/train", "/datasets_list", "/runs_list", "/export", "/add_dataset"):
        with pytest.raises(Exception):  # noqa: B017 (no such endpoint)
            client.predict(api_name=name)
    config = httpx.get(app.url + "config", timeout=30).json()
    text = json.dumps({k: v for k, v in config.items() if k != "i18n_translations"})
    assert "tabs.train" not in text and "datasets." not in text and "export." not in text
    assert {c["type"] for c in config["components"]}.isdisjoint({"file", "uploadbutton", "tabs", "dataframe"})
    assert {d.get("api_name") for d in config["dependencies"] if d.get("api_visibility") == "public"} <= {"chat"}


@pytest.mark.slow
def test_demo_file_and_upload_routes_serve_nothing(demo):
    app, _ = demo
    export = next((app.workspace / "exports").rglob("*.safetensors"))
    with httpx.Client(base_url=app.url.rstrip("/"), timeout=30) as http:
        assert http.get("/").status_code == 200
        for path in (f"/gradio_api/file={export}", f"/file={export}", "/gradio_api/file=/etc/passwd"):
            assert http.get(path).status_code == 404
        response = http.post("/gradio_api/upload", files={"files": ("a.json", b"[]", "application/json")})
        assert response.status_code == 404
        assert http.get("/gradio_api/proxy=http://example.com/").status_code == 404
        assert http.post("/gradio_api/call/train", json={"data": [{}]}).status_code == 404


@pytest.mark.slow
def test_demo_refuses_a_run_it_cannot_serve(demo, tmp_path):
    import subprocess
    import sys

    app, _ = demo
    out = subprocess.run(
        [sys.executable, "app.py", "--workspace", str(app.workspace), "--demo", "99", "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "run 99" in out.stderr and "Traceback" not in out.stderr


# -- the code base itself ----------------------------------------------------------------------


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            yield name, {k.arg: k.value for k in node.keywords if k.arg}, node


def test_no_shell_no_unsafe_torch_load_no_remote_code():
    """The CVE classes of LlamaBoard: shell=True, torch.load without weights_only, remote code by default."""
    problems = []
    files = [p for d in ("backend", "webui", "db", "bench") for p in (ROOT / d).rglob("*.py")] + [ROOT / "app.py"]
    for path in files:
        for name, kw, node in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            shell = kw.get("shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                problems.append(f"{where}: {name}(shell=...)")
            if name in ("system", "popen") and isinstance(node.func, ast.Attribute):
                problems.append(f"{where}: os.{name}")
            if (
                name == "load"
                and isinstance(node.func, ast.Attribute)
                and getattr(node.func.value, "id", "") == "torch"
            ):
                weights_only = kw.get("weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    problems.append(f"{where}: torch.load without weights_only=True")
            remote = kw.get("trust_remote_code")
            if isinstance(remote, ast.Constant) and remote.value is True:
                problems.append(f"{where}: trust_remote_code=True")
            if name in ("eval", "exec") and isinstance(node.func, ast.Name):
                problems.append(f"{where}: {name}()")
    assert len(files) > 20
    assert problems == []


def test_user_model_folders_that_would_run_code_are_refused(tmp_path):
    """A model path typed into the Train tab or CLI: custom code and pickle-only weights never load."""
    from backend.models.catalog import resolve_model

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (plain / "model.safetensors").write_bytes(b"")
    (plain / "training_args.bin").write_bytes(b"")  # a pickle beside safetensors weights is not loaded
    assert resolve_model(str(plain), tmp_path) == plain.resolve()
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({"model_type": "x", "auto_map": {"AutoModel": "evil.Model"}}))
    with pytest.raises(ValueError, match="needs its own Python code .auto_map"):
        resolve_model(str(remote), tmp_path)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (pickled / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(ValueError, match=r"only pickle weights \(pytorch_model.bin\)"):
        resolve_model(str(pickled), tmp_path)
    with pytest.raises(ValueError, match="neither a bundled model"):
        resolve_model(str(tmp_path / "missing"), tmp_path)
    from backend import actions
    from backend.services import Services

    services = Services.open(tmp_path / "ws")
    actions.add_dataset(services, EXAMPLES / "identity.json", "identity")
    with pytest.raises(ValueError, match="auto_map"):
        actions.train(services, {"dataset": "identity", "model": str(remote)})
    assert actions.list_runs(services) == []  # refused before a run was queued


# -- 简体中文 in a real browser ---------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")
NOT_TRANSLATED = {"English", "Tuneboard"}  # the language switch's own name and the product name
UI_TEXT = (
    "label:visible, button:visible, [data-testid='block-info']:visible, .info-text:visible, th:visible, "
    ".tab-container button"
)


def _english_leftovers(page) -> list[str]:
    """Visible labels, hints, buttons and headers without a Chinese character (data values excluded)."""
    texts = {t.strip() for t in page.locator(UI_TEXT).all_inner_texts()}
    return sorted(t for t in texts if re.search("[A-Za-z]{3,}", t) and not CJK.search(t) and t not in NOT_TRANSLATED)


@pytest.mark.slow
def test_chinese_ui_from_login_to_every_tab_and_back_to_english(secured):
    """A zh-CN browser: Chinese login, no English fallback on any tab; the switch turns it all English."""
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

    en_only = {v for k, v in messages("en").items() if v != messages("zh")[k] and not set(v) & set("*`{<[")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
        page.set_default_timeout(20_000)
        page.goto(secured.url)
        page.get_by_label("用户名").fill(USER)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        tabs = page.get_by_role("tab")
        tabs.first.wait_for()
        names = tabs.all_inner_texts()
        assert names[:7] == ["训练", "数据集", "运行记录", "超参数搜索", "对话测试", "评测", "导出"]
        leftovers, fallbacks = {}, {}
        for i, name in enumerate(names):
            tabs.nth(i).click()
            for _ in range(12):  # live tables fill on their timer (every 2 s): give them a few ticks
                page.wait_for_timeout(500)
                leftovers[name] = _english_leftovers(page)
                lines = {line.strip() for line in page.inner_text("body").splitlines()}
                fallbacks[name] = sorted(v for v in en_only & lines if len(v) > 3)  # an English line
                if not leftovers[name] and not fallbacks[name]:
                    break
        assert leftovers == {name: [] for name in names}
        assert fallbacks == {name: [] for name in names}
        tabs.first.click()  # the folded hyperparameters too: their hints (one names a number) are Chinese
        page.get_by_role("button", name=re.compile("^超参数")).click()
        expect(page.get_by_role("spinbutton", name="学习率（0 = 自动）")).to_be_visible()
        assert _english_leftovers(page) == []
        # Gradio titles toasts with their English type; the page's CSS draws them in Chinese instead
        tabs.nth(1).click()
        page.get_by_role("button", name="导入", exact=True).click()  # no file chosen: a warning
        title = page.locator(".toast-title").first
        title.wait_for()
        drawn = title.evaluate("e => [getComputedStyle(e, '::before').content, getComputedStyle(e).fontSize]")
        assert drawn == ['"注意"', "0px"]  # the Chinese title shown, the English one drawn at no size
        page.get_by_text("English", exact=True).click()
        page.wait_for_timeout(1000)
        page.get_by_role("tab", name="Train").wait_for()
        assert page.get_by_role("tab").all_inner_texts()[:7] == [
            "Train",
            "Datasets",
            "Runs",
            "Search",
            "Playground",
            "Evaluate",
            "Export",
        ]
        browser.close()
