"""The dashboard of `agent-backlog serve`, in a real browser: Debian's Chromium, headless,
driven by Playwright for Python (pointed at that executable: Playwright's own browser
download is not used).

Checks that the agents' counts equal `summary`, the table's rows and total equal the
API's, a filter narrows the table, a task created through the API appears without a
reload (the event stream), a task's detail shows its history, the page is read-only by
default and acts with `--ui-actions`, and it fits a phone's width. The screenshot in
docs/dashboard.png is this test's (`UPDATE_SCREENSHOT=1` writes it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import agent_backlog
from conftest import agent_backlog_bin, serving

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT = 20.0

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("REQUIRE_BROWSER"),
    reason="Debian's chromium is not installed (make test installs it)",
)


def get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=TIMEOUT) as response:
        return json.load(response)


def send(base: str, method: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return json.load(response)


def seed(db: Path) -> None:
    """Three agents, 40 tasks in every status."""
    with agent_backlog.Store(str(db), actor="seed") as store:
        for n in range(30):
            store.create_task("marketing-lead", f"Post number {n}", priority=n % 10 + 1)
        for n in range(6):
            store.create_task("support-bot", f"Ticket {n}", priority=2)
        store.create_task("eng", "Fix the build", priority=1)
        for _ in range(8):
            store.claim_next("marketing-lead")
        for n in range(1, 4):
            store.update_task("marketing-lead", f"MKT-{n:03d}", status="complete", result="done")
        store.update_task("support-bot", "SUP-001", status="blocked", blocker="waiting for the customer")
        store.update_task("support-bot", "SUP-002", status="blocked", blocker="needs a refund approval")


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    db = tmp_path / "backlogs.db"
    seed(db)
    with serving(db, *getattr(request, "param", [])) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Browser, base: str, width: int = 1280, height: int = 860) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT * 1000)
    page.goto(base + "/")
    expect(page.locator("#live")).to_have_text("live")
    return page


def table_ids(page: Page) -> List[str]:
    ids: List[str] = page.locator("#tasks tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    return ids


def test_the_counts_and_the_table_are_the_apis(browser: Browser, server: str) -> None:
    page = open_page(browser, server)
    agents = get(server, "/api/agents")
    expect(page.locator("#agents tbody tr")).to_have_count(agents["total"])
    for agent in agents["agents"]:
        summary = get(server, f"/api/backlogs/{agent['agent_id']}/summary")
        row = page.locator(f"#agents tbody tr[data-agent='{agent['agent_id']}']")
        for key in ["queued", "in_progress", "complete", "blocked", "total"]:
            expect(row.locator(f"td[data-count='{key}']")).to_have_text(str(summary[key]))
    listing = get(server, "/api/backlogs?limit=25")
    expect(page.locator("#tasks-total")).to_have_text(str(listing["total"]))
    expect(page.locator("#tasks tbody tr")).to_have_count(len(listing["tasks"]))
    assert table_ids(page) == [t["id"] for t in listing["tasks"]]
    # The next page is the API's next page.
    page.click("#next")
    second = get(server, "/api/backlogs?limit=25&offset=25")
    expect(page.locator("#page")).to_have_text(f"26–{25 + len(second['tasks'])} of {listing['total']}")
    assert table_ids(page) == [t["id"] for t in second["tasks"]]
    if os.environ.get("UPDATE_SCREENSHOT"):
        page.click("#prev")
        page.locator("#tasks tbody tr[data-id='SUP-001']").click()
        expect(page.locator("#history li").first).to_be_visible()
        page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)


def test_filters_narrow_the_table(browser: Browser, server: str) -> None:
    page = open_page(browser, server)
    page.select_option("#filter-status", "blocked")
    blocked = get(server, "/api/backlogs?status=blocked")
    expect(page.locator("#tasks-total")).to_have_text(str(blocked["total"]))
    expect(page.locator("#tasks tbody tr")).to_have_count(blocked["total"])
    assert sorted(table_ids(page)) == sorted(t["id"] for t in blocked["tasks"])
    page.select_option("#filter-status", "")
    page.fill("#filter-agent", "support-bot")
    page.press("#filter-agent", "Enter")
    page.select_option("#filter-priority", "2")
    narrowed = get(server, "/api/backlogs?agent_id=support-bot&priority=2")
    expect(page.locator("#tasks tbody tr")).to_have_count(narrowed["total"])
    assert table_ids(page) == [t["id"] for t in narrowed["tasks"]]


def test_a_task_created_through_the_api_appears_without_a_reload(browser: Browser, server: str) -> None:
    page = open_page(browser, server)
    before = get(server, "/api/backlogs/eng/summary")["total"]
    created = send(server, "POST", "/api/backlogs/eng", {"title": "Ship the dashboard", "priority": 1})
    expect(page.locator(f"#tasks tbody tr[data-id='{created['id']}']")).to_be_visible()
    expect(page.locator("#agents tbody tr[data-agent='eng'] td[data-count='total']")).to_have_text(str(before + 1))
    # A change to the open task shows in its detail, history included.
    page.locator(f"#tasks tbody tr[data-id='{created['id']}']").click()
    expect(page.locator("#detail")).to_contain_text("Ship the dashboard")
    send(server, "PATCH", f"/api/backlogs/eng/{created['id']}", {"status": "in_progress"})
    expect(page.locator("#history li")).to_have_count(2)
    expect(page.locator("#detail .status")).to_have_text("in progress")


def test_read_only_by_default(browser: Browser, server: str) -> None:
    page = open_page(browser, server)
    page.locator("#tasks tbody tr[data-id='SUP-003']").click()
    expect(page.locator("#detail")).to_contain_text("Ticket 2")
    expect(page.locator("#actions")).to_be_hidden()


@pytest.mark.parametrize("server", [["--ui-actions"]], indirect=True)
def test_actions_with_ui_actions(browser: Browser, server: str) -> None:
    page = open_page(browser, server)
    page.locator("#tasks tbody tr[data-id='SUP-003']").click()
    expect(page.locator("#actions")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept("blocked by the release freeze"))
    page.click("#actions button[data-action='block']")
    expect(page.locator("#detail .status")).to_have_text("blocked")
    task = get(server, "/api/backlogs/support-bot/SUP-003")
    assert (task["status"], task["blocker"]) == ("blocked", "blocked by the release freeze")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#actions button[data-action='requeue']")
    expect(page.locator("#detail .status")).to_have_text("queued")
    page.once("dialog", lambda dialog: dialog.accept("11"))
    page.click("#actions button[data-action='priority']")
    expect(page.locator("#action-error")).to_contain_text("priority must be")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#actions button[data-action='delete']")
    expect(page.locator("#detail")).to_contain_text("deleted")
    assert get(server, "/api/backlogs/support-bot/summary")["total"] == 5


def test_titles_are_text_never_markup(browser: Browser, server: str) -> None:
    page = open_page(browser, server)
    markup = '<img src=x onerror="window.pwned=1"><b>bold</b>'
    created = send(server, "POST", "/api/backlogs/eng", {"title": markup, "description": markup, "priority": 1})
    row = page.locator(f"#tasks tbody tr[data-id='{created['id']}']")
    expect(row).to_contain_text(markup)
    row.click()
    expect(page.locator("#detail")).to_contain_text(markup)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#tasks img, #detail img, #tasks b, #detail b").count() == 0


def test_many_agents_come_in_pages(browser: Browser, server: str) -> None:
    for n in range(30):
        send(server, "POST", f"/api/backlogs/fleet-{n:02d}", {"title": "work"})
    page = open_page(browser, server)
    total = get(server, "/api/agents")["total"]
    assert total == 33
    expect(page.locator("#agents-total")).to_have_text("33")
    expect(page.locator("#agents tbody tr")).to_have_count(20)
    expect(page.locator("#agents-page")).to_have_text("1–20 of 33")
    page.click("#agents-next")
    expect(page.locator("#agents tbody tr")).to_have_count(13)
    second = get(server, "/api/agents?limit=20&offset=20")["agents"]
    rows = page.locator("#agents tbody tr").evaluate_all("rows => rows.map(r => r.dataset.agent)")
    assert rows == [a["agent_id"] for a in second]
    # Any agent can be typed into the filter, listed or not.
    page.fill("#filter-agent", "fleet-07")
    page.press("#filter-agent", "Enter")
    expect(page.locator("#tasks-total")).to_have_text("1")


def test_it_fits_a_phone(browser: Browser, server: str) -> None:
    page = open_page(browser, server, width=390, height=844)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
    expect(page.locator("#tasks tbody tr").first).to_be_visible()


def test_under_auth_the_admin_token_in_the_fragment_opens_it(browser: Browser, tmp_path: Path) -> None:
    """`serve --auth`: the page itself is public, everything it shows needs the
    token, given once as /#token=... (kept for the tab, taken out of the address) —
    the live stream too."""
    db = tmp_path / "secured.db"
    seed(db)
    made = subprocess.run([agent_backlog_bin(), "--db", str(db), "token", "create", "--admin"],
                          capture_output=True, text=True, check=True)
    secret = json.loads(made.stdout)["secret"]
    with serving(db, "--auth") as (base, _):
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT * 1000)
        page.goto(base + "/#token=" + secret)
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator("#agents tbody tr")).to_have_count(3)
        assert secret not in page.url
        request = urllib.request.Request(base + "/api/backlogs/eng", method="POST",
                                         data=b'{"title": "Seen live"}',
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {secret}"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            created = json.load(response)
        expect(page.locator(f"#tasks tbody tr[data-id='{created['id']}']")).to_be_visible()
        # Without the token (a new tab of another session), the API refuses it.
        other = browser.new_page()
        other.on("dialog", lambda dialog: dialog.dismiss())
        other.goto(base + "/")
        expect(other.locator("#agents tbody tr")).to_have_count(0)
        page.close()
        other.close()
