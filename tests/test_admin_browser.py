"""The data browser (``/__admin``) driven in headless Chromium with Selenium, on both backends:
sign in, filter, sort, page, create through the form, a field error, a stale edit's 412, an
``$extends`` link, another client's change arriving live, switching identity, the rule
explanation, and an accessibility check of every view. One server and one browser per module
(per backend); each test leaves the page where the next one can navigate away from.

Screenshots of the views ``docs/admin.md`` shows are written to ``docs/admin/`` when
``DATASTORE_ADMIN_SCREENSHOTS=1`` (SQLite run), else to a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from datastore.app import create_app, serve_blueprint_file
from datastore.auth.apikeys import ApiKeyStore
from datastore.clock import utc_now
from datastore.config import Settings
from datastore.storage.engine import Database
from datastore.storage.jobs import JobStore
from tests.support.client import BLUEPRINTS
from tests.support.live import live_server
from tests.test_browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - the test extra installs it
    HAVE_SELENIUM = False
MISSING = [
    name
    for name, present in (
        ("Chromium", CHROMIUM),
        ("ChromeDriver", CHROMEDRIVER),
        ("selenium", HAVE_SELENIUM),
    )
    if not present
]
if MISSING and (os.environ.get("CI") or os.environ.get("DATASTORE_REQUIRE_BROWSER")):
    raise RuntimeError(f"the data browser's tests need {', '.join(MISSING)} here")
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed")

SHOTS = ROOT / "docs" / "admin"
WAIT = 15.0


@dataclass
class Page:
    """The live server, its two spaces and the browser."""

    url: str
    events: str
    posts: str
    ops: str
    key: str
    driver: Any
    shots: Path | None

    def open(self, fragment: str = "") -> None:
        self.driver.get(f"{self.url}/__admin{fragment}")
        self.until(lambda: self.driver.execute_script("return document.body.dataset.ready"))

    def go(self, fragment: str) -> None:
        """Navigate inside the page (no reload), the old view cleared first so that no
        element of it is found while the new one loads."""
        self.driver.execute_script(
            """document.getElementById("main").replaceChildren();
            if (location.hash === arguments[0]) location.hash = "#/";
            location.hash = arguments[0];""",
            fragment,
        )

    def until(self, condition: Callable[[], Any], seconds: float = WAIT) -> Any:
        deadline = time.monotonic() + seconds
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
            except Exception as exc:  # noqa: BLE001 - stale or missing elements: try again
                last, value = exc, None
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting; last error: {last!r}")

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.until(lambda: self.driver.find_element(By.CSS_SELECTOR, selector))

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def text(self, selector: str) -> str:
        return str(self.css(selector).text)

    def ids(self) -> list[str]:
        return [row.get_attribute("data-id") for row in self.all("#documents tbody tr[data-id]")]

    def shot(self, name: str) -> None:
        if self.shots is not None:
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))

    def sign_in(self, kind: str, value: str, label: str = "") -> None:
        from selenium.webdriver.support.ui import Select

        toggle = self.css("#signin-toggle")
        if toggle.get_attribute("aria-expanded") != "true":
            toggle.click()
        Select(self.css("#signin-kind")).select_by_value(kind)
        self.css("#signin-value").clear()
        self.css("#signin-value").send_keys(value)
        self.css("#signin-label").clear()
        if label:
            self.css("#signin-label").send_keys(label)
        self.css("#signin button[type=submit]").click()

    def switch(self, label: str) -> None:
        self.css(f'button.identity[data-label="{label}"]').click()
        self.until(lambda: self.text("#current-identity") == label)

    def filter(self, text: str, dialect: str = "filters") -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.css("#filter-kind")).select_by_value(dialect)
        box = self.css("#filter")
        box.clear()
        if text:
            box.send_keys(text)
        self.css("#apply-filter").click()


def _token(url: str, claims: dict[str, Any]) -> str:
    answer = httpx.post(f"{url}/__jwt", json=claims)
    answer.raise_for_status()
    return str(answer.json()["token"])


def _seed(url: str, events: str, posts: str) -> None:
    with httpx.Client(base_url=url) as client:
        for n in range(12):
            client.put(
                f"/{events}/events/e{n:02}",
                json={
                    "name": f"Event {n:02}",
                    "eventDate": f"2026-12-{n + 1:02}T20:00:00Z",
                    "cost": n,
                    "category": "music" if n % 2 else "talk",
                },
            ).raise_for_status()
        client.put(
            f"/{events}/events/base",
            json={"name": "Weekly jam", "eventDate": "2026-12-01T20:00:00Z", "cost": 5},
        ).raise_for_status()
        client.put(
            f"/{events}/events/jam",
            json={"extends": "/events/base", "eventDate": "2026-12-08T20:00:00Z"},
        ).raise_for_status()
        alice = {"Authorization": f"Bearer {_token(url, {'sub': 'alice'})}"}
        bob = {"Authorization": f"Bearer {_token(url, {'sub': 'bob'})}"}
        for n, published in enumerate([True, False, False]):
            client.put(
                f"/{posts}/posts/a{n}",
                json={
                    "ownerId": "alice",
                    "title": f"Alice {n}",
                    "body": "x",
                    "published": published,
                },
                headers=alice,
            ).raise_for_status()
        client.put(
            f"/{posts}/posts/b0",
            json={"ownerId": "bob", "title": "Bob 0", "body": "x", "published": False},
            headers=bob,
        ).raise_for_status()


def _seed_operations(url: str, ops: str, key: str, database: Database) -> None:
    """Keys (one with a TTL), a dynamic collection, and a queue with one dead job."""
    headers = {"x-apikey": key}
    with httpx.Client(base_url=f"{url}/{ops}", headers=headers) as client:
        client.put("/keyv/greeting", json="hello", params={"ttl": 600_000}).raise_for_status()
        client.put("/keyv/plain", json={"n": 1}).raise_for_status()
        client.post("/things", json={"_id": "t1", "colour": "red"}).raise_for_status()
        for n in range(2):
            client.post("/queue/mail", json={"to": f"u{n}@example.com"}).raise_for_status()
    store, now = JobStore(), utc_now()
    with database.write() as conn:
        job = store.claim(conn, ops, ["mail"], worker="w", now=now, visibility=timedelta(60))
        assert job is not None
        store.fail(conn, job, "SMTP said no", worker="w", now=now, retry_in=timedelta(1))


@pytest.fixture(scope="module")
def page(database: Database) -> Iterator[Page]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    suffix = uuid.uuid4().hex[:6]
    events, posts, ops = f"ev{suffix}", f"mu{suffix}", f"ch{suffix}"
    app = create_app(
        Settings(migrate=False, dev=True, queue_max_attempts=1),
        [
            serve_blueprint_file(BLUEPRINTS / "events.yaml", events),
            serve_blueprint_file(BLUEPRINTS / "multi-user.yaml", posts),
            serve_blueprint_file(BLUEPRINTS / "codehooks.yaml", ops),
        ],
        database=database,
    )
    _, key = ApiKeyStore(database).add(ops, readonly=False)
    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,760",
        "--force-prefers-reduced-motion",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    keep = os.environ.get("DATASTORE_ADMIN_SCREENSHOTS") and not database.is_postgresql
    shots: Path | None = SHOTS if keep else None
    if shots is not None:
        shots.mkdir(exist_ok=True)
    with live_server(app) as url:
        _seed(url, events, posts)
        _seed_operations(url, ops, key, database)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield Page(url, events, posts, ops, key, driver, shots)
        finally:
            driver.quit()


def test_sign_in_shows_the_identity_and_the_tree_with_counts(page: Page) -> None:
    page.open()
    assert page.text("#current-identity") == "anonymous"
    link = page.css(f'#tree a[data-collection="{page.events}:/events"]')
    page.until(lambda: link.find_element("css selector", ".count").text == "14")
    assert "comments" in page.text("#tree")  # the nested collection, under its parent
    page.sign_in("claims", '{"sub": "alice"}')
    page.until(lambda: page.text("#current-identity") == "claims: alice")
    posts = page.css(f'#tree a[data-collection="{page.posts}:/posts"] .count')
    page.until(lambda: posts.text == "3")  # her own three, not bob's draft
    page.shot("signed-in")


def test_filter_sort_and_page(page: Page) -> None:
    page.go(f"#/{page.events}/c/events")
    page.until(lambda: len(page.ids()) == 10)
    assert page.css("#next-page").is_enabled() and not page.css("#prev-page").is_enabled()
    first = page.ids()
    page.css("#next-page").click()
    page.until(lambda: len(page.ids()) == 4)
    assert not set(page.ids()) & set(first)
    page.css("#prev-page").click()
    page.until(lambda: page.ids() == first)

    page.css('th button[data-sort="cost"]').click()
    page.until(lambda: page.css('th[aria-sort="ascending"] button[data-sort="cost"]'))
    page.until(lambda: page.ids()[:2] == ["e00", "e01"])
    page.css('th button[data-sort="cost"]').click()
    page.until(lambda: page.ids()[0] == "e11")

    page.filter("document.cost<3;document.category===talk")
    page.until(lambda: page.ids() == ["e02", "e00"])  # still sorted by cost, descending
    page.shot("table")
    page.filter('{"cost": {"$gte": 10}}', dialect="q")
    page.until(lambda: sorted(page.ids()) == ["e10", "e11"])


def test_a_bad_filter_shows_its_error_where_it_is(page: Page) -> None:
    page.go(f"#/{page.events}/c/events")
    page.filter("document.cost===cheap")
    error = page.css("#filter-error [role=alert]")
    assert "filters" in error.text and "cost expects a number" in error.text
    assert page.css("#filter").get_attribute("aria-invalid") == "true"
    page.shot("filter-error")
    page.filter('{"cost": ', dialect="q")
    page.until(lambda: [code.text for code in page.all("#filter-error code")] == ["q"])


def test_create_through_the_form_after_a_field_error(page: Page) -> None:
    page.go(f"#/{page.events}/new/events")
    page.css("#field-name").send_keys("From the form")
    page.css("#field-capacity").send_keys("0")
    page.css("#create").click()
    page.until(lambda: "is required" in page.text("#error-eventDate"))
    assert "at least 1" in page.text("#error-capacity")
    assert page.css("#field-capacity").get_attribute("aria-invalid") == "true"
    page.shot("field-error")
    page.css("#field-capacity").clear()
    page.css("#field-capacity").send_keys("40")
    page.css("#field-eventDate").send_keys("2027-01-01T19:00:00Z")
    page.css("#new-id").send_keys("formed")
    page.css("#create").click()
    page.until(lambda: page.text("h1").startswith("/events/formed"))
    stored = httpx.get(f"{page.url}/{page.events}/events/formed").json()
    assert (stored["name"], stored["capacity"]) == ("From the form", 40)


def test_a_stale_edit_gets_412_and_overwrites_or_reloads(page: Page) -> None:
    page.go(f"#/{page.events}/d/events/e03")
    page.until(lambda: page.css("#field-cost").get_attribute("value") == "3")
    other = httpx.patch(f"{page.url}/{page.events}/events/e03", json={"name": "Changed elsewhere"})
    assert other.status_code == 200
    page.css("#field-cost").clear()
    page.css("#field-cost").send_keys("33")
    page.css("#save").click()
    dialog = page.css("dialog#conflict")
    page.shot("conflict")
    assert "changed since you opened it" in dialog.text
    page.css("#conflict-overwrite").click()
    page.until(lambda: page.text("#save-status") == "Saved over the other change.")
    stored = httpx.get(f"{page.url}/{page.events}/events/e03").json()
    assert (stored["cost"], stored["name"]) == (33, "Changed elsewhere")  # a PATCH: cost only

    httpx.patch(f"{page.url}/{page.events}/events/e03", json={"cost": 34}).raise_for_status()
    page.css("#field-cost").clear()
    page.css("#field-cost").send_keys("35")
    page.css("#save").click()
    page.css("#conflict-reload").click()
    page.until(lambda: page.css("#field-cost").get_attribute("value") == "34")


def test_inherited_values_and_the_extends_link(page: Page) -> None:
    page.go(f"#/{page.events}/d/events/jam")
    page.until(lambda: page.css('[data-inherited="cost"]'))
    assert page.css("#field-cost").get_attribute("value") == "5"
    assert not page.all('[data-inherited="eventDate"]')  # its own value
    assert page.css("#field-id").get_attribute("readonly") is not None  # a source property
    page.shot("document")
    page.css("nav.chain a.extends-link").click()
    page.until(lambda: page.text("h1").startswith("/events/base"))
    assert page.driver.current_url.endswith("/d/events/base")
    page.css("#tab-raw").click()
    assert json.loads(page.css("#raw-json").get_attribute("value"))["cost"] == 5


def test_delete_offers_to_detach_the_documents_extending_it(page: Page) -> None:
    httpx.put(
        f"{page.url}/{page.events}/events/old",
        json={"name": "Old", "eventDate": "2026-01-01T00:00:00Z", "cost": 7},
    ).raise_for_status()
    httpx.put(
        f"{page.url}/{page.events}/events/young",
        json={"extends": "/events/old", "eventDate": "2026-02-01T00:00:00Z"},
    ).raise_for_status()
    page.go(f"#/{page.events}/d/events/old")
    page.css("#delete").click()
    assert "/events/young" in page.css("dialog#extended").text
    page.css("#detach-delete").click()
    page.until(lambda: page.driver.current_url.endswith("/c/events"))
    young = httpx.get(f"{page.url}/{page.events}/events/young").json()
    assert (young["cost"], young["extends"] or None) == (7, None)


def test_a_change_by_another_client_appears(page: Page) -> None:
    page.go(f"#/{page.events}/c/events")
    page.filter("document.category===film")
    page.until(lambda: "live" in page.text("#live-status"))
    page.until(lambda: page.text("#documents tbody") == "No documents.")
    time.sleep(0.5)  # the stream is open before the change is made
    httpx.put(
        f"{page.url}/{page.events}/events/arrived",
        json={"name": "Arrived", "eventDate": "2026-12-30T20:00:00Z", "category": "film"},
    ).raise_for_status()
    page.until(lambda: page.ids() == ["arrived"])
    assert "created" in page.text("#live-status")


def test_keys_queues_and_dynamic_collections_with_an_api_key(page: Page) -> None:
    page.go(f"#/{page.ops}/queues")
    assert "403" in page.text("main [role=alert]")  # a JWT (alice), whatever its claims
    page.sign_in("apikey", page.key, "operator")
    page.until(lambda: page.text("#current-identity") == "operator")
    page.go(f"#/{page.ops}/kv")
    greeting = page.css('#keys tr[data-key="greeting"] .ttl')
    assert greeting.text in ("10 min", "9 min")
    assert page.text('#keys tr[data-key="plain"] .ttl') == "none"
    page.shot("keyvalue")
    page.css(f'#tree a[data-view="{page.ops}:queues"]').click()
    dead = page.css('#topics tr[data-topic="mail"] td[data-status="dead"]')
    assert dead.text == "1"
    page.css('#topics tr[data-topic="mail"] a').click()
    row = page.css("#dead-letters tr[data-job]")
    assert page.text("#dead-letters .last-error") == "SMTP said no"
    page.shot("queues")
    row.find_element("css selector", "button.retry").click()
    page.until(lambda: "queued again" in page.text("#retry-status"))
    assert page.text("#dead-letters tbody") == "No dead letters."
    assert page.text('#topic-counts td[data-status="queued"]') == "2"
    # the database's dynamic collections are listed for the key; one is opened from the tree
    page.css(f'#stored-{page.ops} a[data-stored="{page.ops}:things"]').click()
    page.until(lambda: page.ids() == ["t1"])
    assert "red" in page.text("#documents")
    page.css(f"#dynamic-{page.ops}").send_keys("things")
    page.css(f"#dynamic-{page.ops}").submit()
    page.until(lambda: page.ids() == ["t1"])


def test_switching_identity_shows_fewer_documents(page: Page) -> None:
    page.go(f"#/{page.posts}/c/posts")
    page.sign_in("claims", '{"sub": "bob"}')
    page.switch("claims: alice")
    page.until(lambda: sorted(page.ids()) == ["a0", "a1", "a2"])
    page.switch("claims: bob")
    page.until(lambda: sorted(page.ids()) == ["a0", "b0"])  # alice's published one, his own
    page.shot("identity")
    page.switch("anonymous")
    page.until(lambda: page.ids() == ["a0"])


def test_why_cant_i_explains_the_rule_with_its_values(page: Page) -> None:
    page.switch("claims: bob")
    page.go(f"#/{page.posts}/d/posts/a1")
    page.until(lambda: "404" in page.text("main [role=alert]"))
    page.css("#why").click()
    get = page.css('#why-output section[data-method="GET"][data-on="document"]')
    page.until(lambda: "refused" in get.text)
    assert 'jwt.sub === document.ownerId → "bob" === "alice" → false' in get.text
    assert "document.published === true → false === true → false" in get.text
    assert "jwt.isAdmin === true → (missing) === true → false" in get.text
    page.shot("why")


A11Y = (Path(__file__).parent / "admin_a11y.js").read_text()
"""Labels, names, unique ids, language and landmarks: the problems found (none expected)."""


def test_every_view_is_labelled_and_works_from_the_keyboard(page: Page) -> None:
    from selenium.webdriver.common.keys import Keys

    views = [
        "",
        f"#/{page.events}/c/events",
        f"#/{page.events}/d/events/jam",
        f"#/{page.events}/new/events",
        f"#/{page.posts}/d/posts/a0",
        f"#/{page.ops}/kv",
        f"#/{page.ops}/queues/mail",
    ]
    page.switch("operator")  # the API key: the key-value and queue views show their tables
    for view in views:
        page.go(view)
        page.until(lambda: page.all("main h1"))
        time.sleep(0.3)
        assert page.driver.execute_script(A11Y) == [], view
    page.switch("anonymous")  # the key is the ops space's: the events space refuses it (401)
    page.open()
    body = page.css("body")
    body.send_keys(Keys.TAB)
    assert page.driver.switch_to.active_element.get_attribute("class") == "skip"
    target = f"#/{page.events}/c/events"
    for _ in range(40):  # Tab to the collection's link in the tree, then Enter opens it
        page.driver.switch_to.active_element.send_keys(Keys.TAB)
        if (page.driver.switch_to.active_element.get_attribute("href") or "").endswith(target):
            break
    else:
        raise AssertionError("the tree's links are not reachable with Tab")
    page.driver.switch_to.active_element.send_keys(Keys.ENTER)
    page.until(lambda: len(page.ids()) == 10)
    header = page.css('th button[data-sort="name"]')
    header.send_keys(Keys.ENTER)
    page.until(lambda: page.css('th[aria-sort="ascending"] button[data-sort="name"]'))


def test_no_script_error_or_policy_violation_in_the_console(page: Page) -> None:
    """Everything the tests above did logged no script error and nothing the page's
    Content-Security-Policy refused (refused API calls log as failed loads: expected)."""
    logged = [entry["message"] for entry in page.driver.get_log("browser")]
    problems = [
        message
        for message in logged
        if "Failed to load resource" not in message
        and ("error" in message.lower() or "Content Security Policy" in message)
    ]
    assert problems == []
