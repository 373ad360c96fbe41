"""The admin's main flows in a real browser: Playwright driving Debian's Chromium (headless),
against pytest-django's live server and a real Celery worker process.

Screenshots of each page are saved under test-artifacts/screenshots/ (git-ignored)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings

from documents.models import Document, Status
from tests.documents.pipeline import makedocs
from tests.factories import PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"

STORY = (
    "The lighthouse keeper climbed the stairs every evening. He lit the lamp and watched "
    "the ships pass the rocks. In winter the storms were fierce and the sea was grey. "
) * 20


@pytest.fixture
def browser(monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(browser, live_server, user):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/documents/document/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/documents/document/")
    return page


def wait_for_db(predicate, *, timeout: float = 180.0, what: str = "", worker=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            hint = f"\nworker log:\n{worker.log()[-3000:]}" if worker else ""
            raise AssertionError(f"timed out waiting for {what}{hint}")
        time.sleep(0.25)


def wait_on_page_until_none_processing(page, timeout_ms: int = 180_000) -> None:
    page.wait_for_function(
        """() => {
            const cells = [...document.querySelectorAll('.doc-status[data-doc-id]')];
            return cells.length > 0 && cells.every(c => c.dataset.docStatus !== 'processing');
        }""",
        timeout=timeout_ms,
    )


def act_on(page, document, action: str) -> str:
    page.check(f'input[name="_selected_action"][value="{document.pk}"]')
    page.select_option('select[name="action"]', action)
    page.click('button[name="index"]')
    page.wait_for_selector("ul.messagelist li")
    return page.inner_text("ul.messagelist")


def test_upload_watch_reprocess_search_purge_and_tenant_isolation(
    browser, live_server, personas, celery_worker, tmp_path, settings
):
    for user in (personas.staff_a, personas.staff_b):
        user.set_password(PASSWORD)
        user.save()
    (tmp_path / "lighthouse.txt").write_text(STORY)
    (tmp_path / "harbour.md").write_text("# Harbour\n\n" + STORY.replace("lighthouse", "harbour"))
    pdf = makedocs.text_pdf(
        tmp_path / "orchard.pdf",
        ["The orchard keeps apples and pears.", "Apples ripen in the autumn sun."],
    )

    page = log_in(browser, live_server, personas.staff_a)
    shot(page, "01-document-list-empty")

    # --- upload several files ---------------------------------------------------------------
    page.click("text=Upload documents")
    page.wait_for_url("**/upload/")
    assert page.locator("input[type=file][multiple]").count() == 1
    assert page.locator("select[name=tenant] option").all_inner_texts() == ["Acme"]
    page.set_input_files(
        "input[name=files]",
        [str(tmp_path / "lighthouse.txt"), str(tmp_path / "harbour.md"), str(pdf)],
    )
    shot(page, "02-upload-form")
    page.click("input[name=_upload]")
    page.wait_for_url("**/admin/documents/document/")
    assert "3 documents uploaded to Acme and queued for processing." in page.inner_text(
        "ul.messagelist"
    )
    shot(page, "03-document-list-processing")

    # --- watch them complete through the auto-refresh (no page reload) ----------------------
    page.evaluate("window.__noReload = 'still here'")
    wait_on_page_until_none_processing(page)
    assert page.evaluate("window.__noReload") == "still here"
    shot(page, "04-document-list-completed")
    documents = list(Document.objects.filter(tenant=personas.tenant_a))
    assert len(documents) == 3
    assert {d.status for d in documents} == {Status.COMPLETED}, [
        (d.original_filename, d.failure_kind, d.failure_message) for d in documents
    ]
    badges = page.locator(".doc-badge").all_inner_texts()
    assert badges == ["Completed"] * 3
    orchard = next(d for d in documents if d.original_filename == "orchard.pdf")

    # --- the document page and its chunks ----------------------------------------------------
    page.goto(f"{live_server.url}/admin/documents/document/{orchard.pk}/change/")
    assert "orchard.pdf" in page.inner_text("#content")
    assert page.locator(".doc-timeline").count() == 1
    shot(page, "05-document-page")
    page.click("text=View the")
    page.wait_for_selector("#chunk-list")
    assert "p. 1" in page.inner_text("#chunk-list")
    shot(page, "06-document-chunks")

    # --- search --------------------------------------------------------------------------------
    page.goto(f"{live_server.url}/admin/documents/document/search/")
    page.fill("input[name=q]", "when do apples ripen")
    # The first query loads the embedding model in the web process: allow for it on a
    # loaded two-core machine.
    page.click("input[type=submit][value=Search]", timeout=180_000)
    page.wait_for_selector("#search-results", timeout=180_000)
    results = page.inner_text("#search-results")
    assert "orchard" in results.lower()
    shot(page, "07-search-results")

    # --- reprocess, watched to completed again -------------------------------------------------
    page.goto(f"{live_server.url}/admin/documents/document/")
    message = act_on(page, orchard, "reprocess")
    assert "1 document queued for reprocessing" in message
    orchard.refresh_from_db()
    wait_on_page_until_none_processing(page)
    orchard.refresh_from_db()
    assert orchard.status == Status.COMPLETED and orchard.vector_count > 0
    shot(page, "08-after-reprocess")

    # --- purge its vectors ---------------------------------------------------------------------
    message = act_on(page, orchard, "purge_vectors")
    assert "1 document queued for a vector purge" in message

    def purged():
        orchard.refresh_from_db()
        return orchard.vector_count == 0

    wait_for_db(purged, timeout=60, what="the vector purge", worker=celery_worker)
    shot(page, "09-after-purge")

    # --- dashboard -----------------------------------------------------------------------------
    page.goto(f"{live_server.url}/admin/documents/document/dashboard/")
    assert "Acme" in page.inner_text("#dash-status")
    assert page.locator("svg.doc-chart").count() == 2
    assert page.inner_text("#dash-workers") != "unknown"
    shot(page, "10-dashboard")
    page.context.close()

    # --- a staff member of another tenant sees none of it ---------------------------------------
    other = log_in(browser, live_server, personas.staff_b)
    listing = other.inner_text("#content")
    for document in documents:
        assert document.title not in listing
    assert other.locator(".doc-status").count() == 0
    shot(other, "11-other-tenant-list")
    other.goto(f"{live_server.url}/admin/documents/document/{orchard.pk}/change/")
    assert "doesn’t exist" in other.inner_text("ul.messagelist") or "exist" in other.content()
    response = other.goto(f"{live_server.url}/admin/documents/document/{orchard.pk}/chunks/")
    assert response.status == 404
    other.goto(f"{live_server.url}/admin/documents/document/search/")
    assert other.locator("select[name=tenant] option").all_inner_texts() == ["Globex"]
    other.goto(
        f"{live_server.url}/admin/documents/document/progress/?ids="
        + ",".join(str(d.pk) for d in documents)
    )
    assert '"documents": {}' in other.inner_text("body")
    shot(other, "12-other-tenant-progress-json")
    other.context.close()
