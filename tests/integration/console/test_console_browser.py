"""The console in a real browser (Debian's Chromium through Playwright) against a real `maas serve`: sign-in,
every page, the changes a person makes (alias, split, rollout, job, keys), the playground's inferences, the
`read` key's view, and paged lists with 200 models and 50 versions of one model. Screenshots of each page go
to `MAAS_CONSOLE_SCREENSHOTS` (else a folder under pytest's tmp path)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest

from ..models import linear_reference
from .conftest import ConsoleServer, ServeProcess, Session
from .fixtures import BULK_MODELS, DRIFT_ROWS, LINEAR_CONFIG, MANY_VERSIONS

pytestmark = pytest.mark.timeout(300)

PAGES = {
    "models": ("/console/", "Models"),
    "model": ("/console/models/iris?a=1&b=2", "iris"),
    "version": ("/console/models/iris/versions/2", "iris v2"),
    "traffic": ("/console/traffic?model=iris", "Traffic and rollouts"),
    "monitoring": ("/console/monitoring?model=iris", "Monitoring"),
    "jobs": ("/console/jobs", "Jobs"),
    "playground": ("/console/playground?model=iris", "Playground"),
    "keys": ("/console/keys", "API keys"),
}


def api(server: ConsoleServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.tokens.admin}", "X-Requested-With": "test"}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def reloads(session: Session) -> Iterator[None]:
    """The action in the block makes the page navigate; if it does not, fail with what the page showed."""
    try:
        with session.page.expect_navigation(timeout=15_000):
            yield
    except Exception as exc:
        flash = session.page.locator("#flash").inner_text() if session.page.locator("#flash").count() else ""
        raise AssertionError(f"the page did not reload; it showed {flash!r}") from exc


def accept_next_dialog(session: Session) -> list[str]:
    seen: list[str] = []

    def accept(dialog: object) -> None:
        seen.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    session.page.once("dialog", accept)
    return seen


def test_every_page_opens_for_an_admin(admin: Session) -> None:
    page = admin.page
    for name, (path, heading) in PAGES.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, name
        assert heading in page.locator("h1").inner_text(), name
        page.wait_for_load_state("networkidle")
        admin.shot(name)
    lineage = page.goto("/console/models/iris")
    assert lineage is not None
    page.wait_for_selector("#lineage[data-edges='1']")
    edge_label = page.evaluate("() => document.getElementById('lineage-data').textContent")
    assert '"transform": "quantize"' in edge_label
    assert admin.errors == []


def test_move_an_alias_and_the_model_page_changes(admin: Session) -> None:
    page = admin.page
    for number in (1, 2):
        page.goto(f"/console/models/iris/versions/{number}")
        page.fill("#alias-form input[name=alias]", "production")
        seen = accept_next_dialog(admin)
        with reloads(admin):
            page.click("#alias-form button[type=submit]")
        assert seen and "production" in seen[0]
        page.wait_for_selector("#version-aliases .chip:text('production')")
        page.goto("/console/models/iris")
        assert page.locator("#aliases [data-alias=production]").inner_text() == f"production → v{number}"
    assert api(admin.server, "GET", "/api/v1/versions/iris@production").json()["version"] == 2


def test_set_a_traffic_split(admin: Session) -> None:
    page = admin.page
    page.goto("/console/traffic?model=split")
    assert page.locator("#arms tr.arm").count() == 1
    page.click("#add-arm")
    rows = page.locator("#arms tr.arm")
    rows.nth(0).locator("select").select_option("1")
    rows.nth(0).locator("input").fill("30")
    rows.nth(1).locator("select").select_option("2")
    rows.nth(1).locator("input").fill("70")
    with reloads(admin):
        page.click("#split-form button[type=submit]")
    assert [rows.nth(i).locator("input").input_value() for i in range(2)] == ["30", "70"]
    arms = api(admin.server, "GET", "/api/v1/models/split/traffic").json()["arms"]
    assert arms == [{"version": 1, "weight": 30}, {"version": 2, "weight": 70}]
    page.goto("/console/?q=split")
    assert "v1 30%" in page.locator("tr[data-model=split]").inner_text()
    admin.shot("traffic-split")


def test_start_and_abort_a_rollout(admin: Session) -> None:
    page = admin.page
    page.goto("/console/traffic?model=roll")
    page.select_option("#rollout-form select[name=to]", "2")
    page.fill("#rollout-form input[name=steps]", "10,50,100")
    with reloads(admin):
        page.click("#rollout-form button[type=submit]")
    assert page.locator("#rollout-state").inner_text() == "running"
    assert "started" in page.locator("#timeline").inner_text()
    admin.shot("rollout-running")
    seen = accept_next_dialog(admin)
    with reloads(admin):
        page.click(".rollout-verb[data-verb=abort]")
    assert seen and "Abort" in seen[0]
    assert page.locator("#rollout-state").inner_text() == "aborted"
    assert "aborted" in page.locator("#timeline").inner_text()
    assert api(admin.server, "GET", "/api/v1/models/roll/rollout").json()["state"] == "aborted"


def test_tabular_inference_from_the_generated_form(admin: Session) -> None:
    page = admin.page
    page.goto("/console/playground?model=iris")
    row = [1.5, -2.0, 0.25, 4.0]
    fields = page.locator("#tabular-form fieldset[data-input=x] input")
    assert fields.count() == 4  # one field per feature of the signature's x [-1, 4]
    for i, value in enumerate(row):
        fields.nth(i).fill(str(value))
    page.click("#tabular-form button[type=submit]")
    page.wait_for_selector("#prediction[data-label]")
    expected = LINEAR_CONFIG["labels"][int(np.argmax(linear_reference(np.array([row], np.float32))[0][0]))]
    assert page.locator("#prediction").get_attribute("data-label") == expected
    page.click("#explain-button")
    page.wait_for_selector("#explanation:not([hidden])", timeout=60_000)  # SHAP on a loaded machine
    assert page.locator("#chart-attributions").is_visible() and admin.errors == []
    admin.shot("playground-tabular")


def test_draw_a_digit_and_get_a_prediction(admin: Session) -> None:
    page = admin.page
    page.goto("/console/playground?model=digits")
    box = page.locator("#draw").bounding_box()
    assert box is not None
    scale = box["width"] / 280  # a 7: the bar, then the stroke down to the left (canvas pixels)
    path = [(60, 40), (140, 40), (220, 40), (187, 110), (153, 180), (120, 250)]
    page.mouse.move(box["x"] + path[0][0] * scale, box["y"] + path[0][1] * scale)
    page.mouse.down()
    for px, py in path[1:]:
        page.mouse.move(box["x"] + px * scale, box["y"] + py * scale, steps=5)
    page.mouse.up()
    page.click("#predict-image")
    page.wait_for_selector("#prediction[data-label]")
    assert page.locator("#prediction").get_attribute("data-label") == "7"
    page.click("#explain-image")
    page.wait_for_selector("#heatmap:not([hidden])", timeout=60_000)
    admin.shot("playground-digit")
    assert admin.errors == []


def test_submit_a_job_and_watch_it_finish(admin: Session) -> None:
    page = admin.page
    page.goto("/console/jobs")
    form = page.locator(".job-form[data-kind=evaluate]")
    form.locator("input[name=ref]").fill("iris:1")
    form.locator("input[name=data]").fill("sklearn:iris")
    with page.expect_navigation(url=re.compile(r".*/console/jobs/[^/]+$")):
        form.locator("button[type=submit]").click()
    page.wait_for_selector("#job-state:text('succeeded')", timeout=90_000)
    assert "report" in page.locator("#job-result").inner_text()
    admin.shot("job-finished")
    page.goto("/console/models/iris/versions/1")
    report = page.locator("section.evaluation").first
    assert "Evaluation on sklearn:iris" in report.locator("h3").inner_text()
    assert report.locator("tr[data-metric=accuracy] td").inner_text() != ""
    assert report.locator("table.confusion tbody td").count() == 9  # three classes
    assert report.locator("table.per-class tbody tr").count() == 3
    admin.shot("evaluated-version")
    assert admin.errors == []


def submit_job(admin: Session, kind: str, fields: dict[str, str]) -> str:
    """Fill the jobs page's form of `kind` and submit it; the job's page opens. Returns its URL."""
    page = admin.page
    page.goto("/console/jobs")
    form = page.locator(f".job-form[data-kind={kind}]")
    for name, value in fields.items():
        field = form.locator(f"[name={name}]")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    with page.expect_navigation(url=re.compile(r".*/console/jobs/[^/]+$")):
        form.locator("button[type=submit]").click()
    return page.url


def test_optimize_and_train_from_the_forms_and_the_new_versions_appear(admin: Session) -> None:
    optimizing = submit_job(admin, "optimize", {"ref": "iris:1", "quantize": "dynamic", "data": "sklearn:iris",
                                                "max_accuracy_drop": "0.05"})
    submit_job(admin, "train", {"name": "trained", "config": json.dumps(
        {"data": {"source": "sklearn:iris"}, "model": {"family": "logistic_regression"}})})
    page = admin.page
    page.wait_for_selector("#job-state:text('succeeded')", timeout=120_000)
    page.click("#job-version a:text('trained v1')")
    page.wait_for_selector("section.training")
    assert page.locator("section.training table.test-metrics tr[data-metric=accuracy]").count() == 1
    admin.shot("trained-version")

    page.goto(optimizing)
    page.wait_for_selector("#job-state:text('succeeded')", timeout=120_000)
    child = page.locator("#job-version a").first.inner_text()  # "iris vN"
    number = int(child.split(" v")[1])
    page.click("#job-version a:text('its lineage')")
    row = page.locator(f"#versions tr[data-version='{number}']")
    assert "quantize of v1" in row.inner_text()
    lineage = json.loads(page.locator("#lineage-data").text_content() or "[]")
    assert {"version": number, "parent": 1, "transform": "quantize"}.items() <= next(
        v for v in lineage if v["version"] == number).items()
    page.wait_for_selector("#lineage[data-edges]", state="attached")
    admin.shot("optimized-lineage")
    page.goto(f"/console/models/iris/versions/{number}")
    report = page.locator("section.optimization")
    assert "passed" in report.locator("#gate-verdict").inner_text()
    assert report.locator("table.parent-child tr[data-figure=size_bytes]").count() == 1
    assert "dynamic" in report.locator("table.opt-params").inner_text()
    page.wait_for_selector("canvas[data-chart][data-drawn=true]", state="attached")
    admin.shot("optimized-version")
    page.goto(f"/console/models/iris?a=1&b={number}")  # v1 was evaluated by the job test above
    reports = page.locator("#compare-reports > div")
    assert reports.nth(0).locator("section.evaluation").count() >= 1
    assert reports.nth(1).locator("section.optimization #gate-verdict").count() == 1
    admin.shot("compare-reports")
    assert admin.errors == []


def test_monitoring_charts_the_servers_own_metrics(admin: Session) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    for _ in range(5):
        assert api(admin.server, "POST", "/v2/models/iris/infer", json=body).status_code == 200
    page = admin.page
    page.goto("/console/monitoring?model=iris")
    page.wait_for_function("() => Number(document.getElementById('charts').dataset.points || 0) > 0",
                           timeout=20_000)
    series = page.evaluate("() => fetch('/console/monitoring/data?model=iris').then(r => r.json())")["series"]
    assert sum(p["requests_per_s"] for p in series) > 0
    admin.shot("monitoring")


def test_drifted_features_are_marked_on_the_monitoring_page(admin: Session) -> None:
    shifted = np.random.default_rng(4).normal(size=(DRIFT_ROWS * 16, 4)).astype(np.float32)
    shifted[:, :2] += 3  # the first two features move by three standard deviations
    for start in range(0, len(shifted), DRIFT_ROWS):
        rows = shifted[start:start + DRIFT_ROWS]
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(rows.shape),
                            "data": rows.ravel().tolist()}]}
        assert api(admin.server, "POST", "/v2/models/drifty/infer", json=body).status_code == 200
    deadline = time.monotonic() + 30  # the prediction log is written on its own schedule
    while (r := api(admin.server, "GET", "/api/v1/models/drifty/drift", params={"since": "1h"})).status_code != 200 \
            or r.json()["current_rows"] < len(shifted):
        assert time.monotonic() < deadline, r.text
        time.sleep(0.3)
    page = admin.page
    page.goto("/console/monitoring?model=drifty")
    page.click("#drift-form button[type=submit]")
    page.wait_for_selector("#drift-table tbody tr")
    marked = page.locator("#drift-table tbody tr.drifted").evaluate_all("rows => rows.map(r => r.dataset.feature)")
    assert marked == ["in.x[0]", "in.x[1]"]
    assert page.locator("#drift-table tbody tr").count() == 4
    assert "the data set drifted" in page.locator("#drift-summary").inner_text()
    admin.shot("monitoring-drift")
    assert admin.errors == []


def test_keys_create_once_and_revoke_ends_the_session(admin: Session, browser: object,
                                                      console_server: ConsoleServer) -> None:
    page = admin.page
    page.goto("/console/keys")
    page.fill("#key-form input[name=name]", "temporary")
    page.select_option("#key-form select[name=scope]", "read")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#new-key:not([hidden])")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("maas_")
    other = Session(browser, console_server, token)
    try:
        page.goto("/console/keys")
        assert token not in page.content()  # shown once, never listed
        key_id = token.split("_")[1]
        seen = accept_next_dialog(admin)
        with reloads(admin):
            page.click(f".revoke-key[data-key='{key_id}']")
        assert seen and key_id in seen[0]
        deadline = time.monotonic() + 10  # the authorizer re-reads keys within its cache period
        while True:
            other.page.goto("/console/")
            if "/console/login" in other.page.url or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "/console/login" in other.page.url
    finally:
        other.close()


def test_a_read_key_sees_no_controls_and_its_writes_are_refused(reader: Session) -> None:
    page = reader.page
    page.goto("/console/models/iris/versions/1")
    assert page.locator("#alias-form").count() == 0
    assert page.locator("#tag-form").count() == 0
    assert page.locator("nav a[href='/console/keys']").count() == 0
    page.goto("/console/traffic?model=split")
    assert page.locator("#split-form button[type=submit]").count() == 0
    assert page.locator("#rollout-form").count() == 0
    assert page.locator("#arms select").first.is_disabled()
    page.goto("/console/jobs")
    assert page.locator(".job-form").count() == 0
    reader.shot("read-key-version")
    forged = page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const send = (headers) => fetch('/api/v1/models/iris/aliases/production', {method: 'PUT',
            headers: {'Content-Type': 'application/json', 'X-Requested-With': 'x', ...headers},
            body: JSON.stringify({version: 1})}).then(r => r.status);
        return [await send({'X-CSRF-Token': csrf}), await send({})];
    }""")
    assert forged == [403, 403]  # the key's scope refuses it; without the token the gate does
    assert page.goto("/console/keys").status == 403  # type: ignore[union-attr]
    assert reader.errors == []


def test_lists_stay_usable_with_200_models_and_50_versions(admin: Session) -> None:
    page = admin.page
    page.goto("/console/")
    total = len(api(admin.server, "GET", "/api/v1/models").json())  # the home's, and the trained one
    assert total > BULK_MODELS
    assert page.locator("h1 small").inner_text() == str(total)
    assert page.locator("#models tbody tr").count() == 50
    assert f"page 1 of {-(-total // 50)}" in page.locator(".pager").inner_text()
    with reloads(admin):
        page.click(".pager a[rel=next]")
    assert "page 2 of" in page.locator(".pager").inner_text()
    page.fill("input[name=q]", "bulk-19")
    with reloads(admin):
        page.click("form.search button")
    assert page.locator("#models tbody tr").count() == 10  # bulk-190 … bulk-199
    page.goto("/console/models/many")
    page.wait_for_selector("#lineage[data-nodes]", state="attached")
    assert page.locator("#lineage").get_attribute("data-nodes") == str(MANY_VERSIONS), admin.errors
    assert page.locator("#versions tbody tr").count() == 25
    assert page.locator("#lineage").get_attribute("data-edges") == str(MANY_VERSIONS - 1)
    with reloads(admin):
        page.click(".pager a[rel=next]")
    assert page.locator("#versions tbody tr").count() == 25
    admin.shot("many-versions")


def test_a_session_survives_a_restart_and_is_shared_by_a_second_server(admin: Session,
                                                                       console_server: ConsoleServer) -> None:
    page = admin.page
    page.goto("/console/models/iris")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    second = ServeProcess(console_server.home, log_name="serve-second.log", models=("iris",))
    try:
        console_server.restart_beside(second)  # one more process on the same registry, the first restarted
        page.goto("/console/models/iris")
        assert "/console/login" not in page.url  # still signed in after the restart
        page.goto(f"{second.url}/console/models/iris")  # the cookie is the host's, whatever the port
        assert "/console/login" not in page.url and page.locator("h1").inner_text().startswith("iris")
        assert page.locator('meta[name="csrf-token"]').get_attribute("content") == csrf
        status = page.evaluate("""async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/v1/versions/iris:1/tags', {method: 'PATCH', headers: {
                'Content-Type': 'application/json', 'X-Requested-With': 'x', 'X-CSRF-Token': csrf},
                body: JSON.stringify({tags: {'seen-by': 'second'}})});
            return r.status;
        }""")
        assert status == 200  # a change through the second process, with the session's CSRF token
    finally:
        second.stop()
    assert admin.errors == []
