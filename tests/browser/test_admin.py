"""Administration in real headless Chromium against a real `casescope serve`: an admin creates
a user and grants a case from the pages; the user makes a read-only token on the tokens page,
which reads but cannot write; the admin disables the user and the user's open session ends
at once, and so does the token; a rules zip imported on the Rule sets page lists the rule
that cannot run, and a level is disabled from there. Screenshots go to the test's tmp folder
(or $CASESCOPE_ARTIFACTS).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.browser.support import (
    NEEDS_BROWSER,
    PASSWORD,
    VIEWPORT,
    api_client,
    artifacts_dir,
    chromium_page,
    create_admin,
    log_in,
    serve,
    serve_env,
    submit,
)

pytestmark = NEEDS_BROWSER
USER = "bob"
RULE = """title: {title}
id: 00000000-0000-0000-0000-00000000000{n}
status: stable
level: {level}
logsource: {{category: process_creation, product: windows}}
detection:
  sel: {{CommandLine|contains: '{title}'}}
  condition: sel
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The server's base URL and a case made by the admin."""
    env = serve_env(tmp_path_factory.mktemp("adminhome") / "home", workers=1)
    create_admin(env)
    with serve(env) as base, api_client(base) as http:
        case_id = http.post("/api/cases", json={"name": "granted case"}).json()["id"]
        yield base, case_id


def rules_zip(folder: Path) -> Path:
    path = folder / "demo-rules.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/whoami.yml", RULE.format(title="whoami", n=1, level="high"))
        archive.writestr("a/netuser.yml", RULE.format(title="netuser", n=2, level="low"))
        archive.writestr(
            "a/broken.yml", "title: broken\ndetection: {sel: {a: 1}, condition: x and}\n"
        )
    path.write_bytes(buffer.getvalue())
    return path


def user_row(page: Any, name: str) -> str:
    return f"#users tr[data-user='{name}']"


def test_users_grants_tokens_and_a_disabled_session(
    browser: Any, server: tuple[str, int], tmp_path: Path
) -> None:
    base, case_id = server
    shots = artifacts_dir(tmp_path)
    with chromium_page(browser) as admin:
        log_in(admin, base)
        admin.click("nav >> text=Admin")
        admin.wait_for_url(f"{base}/admin/users")
        admin.fill("#new-user input[name=username]", USER)
        admin.fill("#new-user input[name=password]", PASSWORD)
        admin.uncheck("#new-user input[name=must_change_password]")
        submit(admin, "#new-user button[type=submit]")
        assert admin.inner_text(f"{user_row(admin, USER)} td.state") == "active"
        submit(admin, "nav.subnav >> text=Case grants")
        admin.select_option("#grant-form select[name=username]", USER)
        admin.select_option("#grant-form select[name=case_id]", str(case_id))
        submit(admin, "#grant-form button[type=submit]")
        assert admin.is_visible(f"#grants tr[data-user='{USER}'][data-case='{case_id}']")

        user = admin.context.browser.new_page(viewport=VIEWPORT)
        user.goto(f"{base}/login")
        user.fill("input[name=username]", USER)
        user.fill("input[name=password]", PASSWORD)
        user.click("button[type=submit]")
        user.wait_for_url(f"{base}/")
        assert "granted case" in user.inner_text("main")
        submit(user, "nav >> text=API tokens")
        user.fill("#new-token-form input[name=name]", "reporting")
        user.select_option("#new-token-form select[name=scope]", "read")
        submit(user, "#new-token-form button[type=submit]")
        token = user.inner_text("#token-value").strip()
        assert "read-only" in user.inner_text("#my-tokens")
        user.screenshot(path=str(shots / "admin-tokens.png"), full_page=True)
        bearer = {"Authorization": f"Bearer {token}"}
        with httpx2.Client(base_url=base, headers=bearer) as api:
            assert api.get(f"/api/cases/{case_id}").status_code == 200
            refused = api.post("/api/cases", json={"name": "written by a token"})
            assert refused.status_code == 403 and "read-only" in refused.json()["detail"]

            submit(admin, "nav.subnav >> text=Users")
            submit(admin, f"{user_row(admin, USER)} form[data-action=disable] button")
            assert admin.inner_text(f"{user_row(admin, USER)} td.state") == "disabled"
            admin.screenshot(path=str(shots / "admin-users.png"), full_page=True)
            user.goto(f"{base}/cases/{case_id}")
            user.wait_for_url(f"{base}/login**")  # the open session ended at once
            assert user.is_visible("input[name=password]")
            assert api.get(f"/api/cases/{case_id}").status_code == 401


def test_rule_sets_page_imports_a_zip_and_disables_a_level(
    browser: Any, server: tuple[str, int], tmp_path: Path
) -> None:
    base, _ = server
    with chromium_page(browser) as page:
        log_in(page, base)
        page.goto(f"{base}/admin/rules")
        page.set_input_files("#rule-files", str(rules_zip(tmp_path)))
        submit(page, "#import-form button[type=submit]")
        result = page.inner_text("#import-result")
        assert "demo-rules: 2 rules loaded" in result and "1 cannot run" in result
        submit(page, "#import-result >> text=see why")
        assert "broken.yml" in page.inner_text("#rules")
        assert page.is_visible("#rules .rule-error")
        page.goto(f"{base}/admin/rules")
        page.check("#toggle-form input[name=levels][value=low]")
        submit(page, "#toggle-form button:has-text('Disable')")
        assert "1 rule disabled" in page.inner_text("#change-result")
        assert page.inner_text("#rule-sets tr[data-source='demo-rules'] td.running") == "1"
        page.screenshot(path=str(artifacts_dir(tmp_path) / "admin-rules.png"), full_page=True)
        folder = tmp_path / "folder-rules"
        (folder / "win").mkdir(parents=True)
        (folder / "win" / "one.yml").write_text(RULE.format(title="one", n=3, level="medium"))
        (folder / "README.md").write_text("not a rule")
        page.set_input_files("#rule-folder", str(folder))
        page.fill("#import-form input[name=name]", "from-a-folder")
        submit(page, "#import-form button[type=submit]")
        assert "from-a-folder: 1 rule loaded" in page.inner_text("#import-result")
