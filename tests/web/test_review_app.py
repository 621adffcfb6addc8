"""The review web app in a real browser, against the real stack and the fake provider."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid

from google.protobuf.field_mask_pb2 import FieldMask
from playwright.sync_api import expect
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.web.session import COOKIE_NAME
from tests.web.conftest import choose_project, new_project, sign_in, wait_for

HOSTILE = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'


def _provider_with_default(stack, fake_llm, project: str) -> str:
    """A provider on the fake server, made the project's default through the API."""
    admin = stack.admin()
    created = admin.providers.CreateProvider(
        provider_pb.CreateProviderRequest(
            provider=provider_pb.Provider(
                display_name=f"fake {uuid.uuid4().hex[:6]}",
                kind=provider_pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
                endpoint=fake_llm.openai_base_url,
                model="gpt-4o-mini",
                api_key="sk-web-test-key-1234",
            )
        ),
        timeout=10,
    ).provider
    admin.providers.AssignProvider(
        provider_pb.AssignProviderRequest(project=f"projects/{project}", provider=created.name, default=True),
        timeout=10,
    )
    return created.name


def _job(stack, project: str, count: int, **fields) -> gen_pb.GenerationJob:
    return (
        stack.admin()
        .generation.CreateGenerationJob(
            gen_pb.CreateGenerationJobRequest(
                parent=f"projects/{project}",
                generation_job=gen_pb.GenerationJob(text_count=count, **fields),
                request_id=uuid.uuid4().hex,
            ),
            timeout=10,
        )
        .generation_job
    )


def _wait_job(stack, name: str, timeout: float = 90) -> gen_pb.GenerationJob:
    deadline = time.monotonic() + timeout
    admin = stack.admin()
    while True:
        job = admin.generation.GetGenerationJob(gen_pb.GetGenerationJobRequest(name=name), timeout=10).generation_job
        if job.state in (gen_pb.GENERATION_JOB_STATE_SUCCEEDED, gen_pb.GENERATION_JOB_STATE_FAILED):
            return job
        assert time.monotonic() < deadline, f"job not finished: {job.counts}"
        time.sleep(0.1)


def test_sign_in_refuses_an_unknown_token_and_accepts_the_admin_token(page, web, stack, fake_llm, shoot):
    known = new_project()
    _provider_with_default(stack, fake_llm, known)
    sign_in(page, web, "not-a-real-token")
    expect(page.locator("#error-token")).to_contain_text("not accepted")
    shoot(page, "sign-in")
    sign_in(page, web, stack.admin_token)
    expect(page).to_have_url(re.compile(r"/projects$"))
    expect(page.locator("header")).to_contain_text("admin")
    # An admin may act in any project: it types one, with the projects the registry
    # knows (here: one with a provider assigned) to pick from.
    expect(page.locator("input#project")).to_have_count(1)
    expect(page.locator(f"#project-known option[value='{known}']")).to_have_count(1)
    typed = new_project()
    choose_project(page, typed)
    expect(page.locator("header .project")).to_have_text(f"projects/{typed}")
    assert page.script_errors == []


def _project_token(stack, *projects: str) -> str:
    return (
        stack.admin()
        .tokens.CreateToken(
            token_pb.CreateTokenRequest(
                token=token_pb.ApiToken(
                    display_name="reviewer",
                    role=token_pb.TOKEN_ROLE_PROJECT,
                    projects=[f"projects/{p}" for p in projects],
                )
            ),
            timeout=10,
        )
        .secret
    )


def test_a_project_token_chooses_its_project_from_a_list(page, web, stack, fake_llm, shoot):
    first, second = sorted([new_project(), new_project()])
    providers = {p: _provider_with_default(stack, fake_llm, p) for p in (first, second)}
    sign_in(page, web, _project_token(stack, first, second))
    expect(page).to_have_url(re.compile(r"/projects$"))
    # Its two projects, nothing preselected and nothing to type.
    picker = page.locator("select#project")
    expect(picker.locator("option:not([disabled])")).to_have_text([first, second])
    expect(picker).to_have_value("")
    expect(page.locator("input#project")).to_have_count(0)
    shoot(page, "projects")
    choose_project(page, second)
    expect(page.locator("header .project")).to_have_text(f"projects/{second}")

    # The generate page offers the same two, the current one selected; picking the
    # other switches to it, with its own providers.
    page.goto(f"{web.url}/p/{second}/generate")
    switch = page.locator("select#switch-project")
    expect(switch).to_have_value(second)
    expect(page.locator("#provider")).to_have_value(providers[second])
    switch.select_option(first)
    page.wait_for_url(re.compile(rf"/p/{first}/generate$"))
    expect(page.locator("select#switch-project")).to_have_value(first)
    expect(page.locator("#provider")).to_have_value(providers[first])

    # A token of one project gets it preselected.
    page.click("button:has-text('Sign out')")
    sign_in(page, web, _project_token(stack, first))
    expect(page).to_have_url(re.compile(r"/projects$"))
    expect(page.locator("select#project")).to_have_value(first)
    expect(page.locator("select#project option:not([disabled])")).to_have_text([first])
    page.click("#project-form button[type=submit]")
    expect(page).to_have_url(re.compile(rf"/p/{first}/texts$"))
    assert page.script_errors == []


def test_admin_creates_validates_rotates_and_assigns_a_provider(page, web, stack, fake_llm, shoot):
    fake_llm.configure(api_keys={"sk-right-key-0001", "sk-rotated-key-0002"})
    project = new_project()
    sign_in(page, web, stack.admin_token)
    page.goto(f"{web.url}/admin/providers/new?kind=compatible")
    # Kind-specific: an OpenAI-compatible server has no Azure deployment field.
    expect(page.locator("#deployment")).to_have_count(0)
    page.fill("#display_name", "Fake vLLM")
    page.fill("#provider_id", f"fake-{project}")
    page.fill("#endpoint", fake_llm.openai_base_url)
    page.fill("#model", "gpt-4o-mini")
    page.fill("#api_key", "sk-wrong-key-9999")
    page.click("#validate-button")
    expect(page.locator("#validation-result")).to_contain_text("invalid key")
    page.fill("#api_key", "sk-right-key-0001")
    page.click("#validate-button")
    expect(page.locator("#validation-result")).to_contain_text("valid")
    expect(page.locator("#validation-result")).not_to_contain_text("invalid")
    shoot(page, "provider-form")
    page.check("input[name=validate_first]")
    page.click("button[type=submit]:has-text('Save')")
    # Saved, the provider's own page: the key never comes back to the browser, only its hint.
    expect(page).to_have_url(re.compile(rf"/admin/providers/fake-{project}$"))
    expect(page.locator(".notice")).to_contain_text(f"providers/fake-{project}")
    expect(page.locator("#key-hint")).to_have_text(re.compile(r"…"))
    assert "sk-right-key-0001" not in page.content()

    page.click("button:has-text('Validate')")
    expect(page.locator(".notice")).to_contain_text("checked: valid")
    expect(page.locator("#last-check")).to_contain_text("valid")

    page.locator("#rotate-form input[name=api_key]").fill("sk-rotated-key-0002")
    page.click("#rotate-form button")
    expect(page.locator(".notice")).to_contain_text("New key")
    expect(page.locator("#key-hint")).to_contain_text("0002")
    assert "sk-rotated-key-0002" not in page.content()

    page.locator("#assign-form input[name=project]").fill(project)
    page.locator("#assign-form input[name=default]").check()
    page.click("#assign-form button")
    expect(page.locator("#assignments")).to_contain_text(f"providers/fake-{project}")
    expect(page.locator("#assignments")).to_contain_text("default")
    shoot(page, "providers")
    # The assignment is real: the gateway lists it for the project.
    listed = stack.admin().providers.ListProjectProviders(
        provider_pb.ListProjectProvidersRequest(project=f"projects/{project}"), timeout=10
    )
    assert [(p.provider.name, p.default) for p in listed.project_providers] == [(f"providers/fake-{project}", True)]

    # Deleting an assigned provider needs "also while assigned"; then it is gone.
    page.goto(f"{web.url}/admin/providers/fake-{project}")
    page.click("#delete-form button")
    expect(page.locator(".notice")).to_contain_text("Not deleted")
    page.locator("#delete-form input[name=force]").check()
    page.click("#delete-form button")
    expect(page.locator(".notice")).to_contain_text(f"Deleted providers/fake-{project}")
    assert page.goto(f"{web.url}/admin/providers/fake-{project}").status == 404
    assert page.script_errors == []


def test_generate_twenty_texts_with_a_variable_and_watch_them_arrive(page, web, stack, fake_llm, workers, shoot):
    project = new_project()
    provider = _provider_with_default(stack, fake_llm, project)
    # Every provider call fails until the job page is open, so every text it shows later
    # came through the live stream, not the first render.
    fake_llm.configure(rate_500=1.0)
    sign_in(page, web, stack.admin_token, project)
    page.goto(f"{web.url}/p/{project}/generate")
    expect(page.locator("#provider")).to_have_value(provider)
    expect(page.locator("#provider")).to_contain_text("default")
    page.fill("#prompt", "A clinical note mentioning {drug}.")
    variable = page.locator(".variable[data-variable='drug'] textarea")
    expect(variable).to_be_visible()
    variable.fill("aspirin, ibuprofen")
    page.fill("input[name=text_count]", "20")
    page.fill("#tags", "clinical")
    shoot(page, "generate")
    page.click("button:has-text('Start the job')")
    expect(page).to_have_url(re.compile(rf"/p/{project}/jobs/[^/]+$"))
    assert page.locator("#live-texts li").count() == 0
    fake_llm.configure(rate_500=0.0)
    expect(page.locator("#live-texts li")).to_have_count(20, timeout=90_000)
    expect(page.locator("[data-count=produced]")).to_have_text("20")
    expect(page.locator("[data-count=state]")).to_have_text("succeeded")
    expect(page.locator("#cancel-form")).to_have_count(0)
    shoot(page, "job")

    job_id = page.url.rsplit("/", 1)[-1]
    job = (
        stack.admin()
        .generation.GetGenerationJob(
            gen_pb.GetGenerationJobRequest(name=f"projects/{project}/generationJobs/{job_id}"), timeout=10
        )
        .generation_job
    )
    assert [(v.name, list(v.values)) for v in job.variables] == [("drug", ["aspirin", "ibuprofen"])]
    assert job.counts.produced == 20
    page.goto(f"{web.url}/p/{project}/texts?job={job_id}")
    expect(page.locator("li.row")).to_have_count(20)
    expect(page.locator("li.row .var:has-text('drug=aspirin')")).to_have_count(10)
    expect(page.locator("li.row .tag:has-text('clinical')")).to_have_count(20)
    assert page.script_errors == []


def test_review_edit_conflict_tag_discard_restore_import_and_download(page, web, stack, fake_llm, workers, shoot):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    job = _wait_job(stack, _job(stack, project, 6, prompt="Write one sentence.").name)
    job_id = job.name.rsplit("/", 1)[-1]
    admin = stack.admin()
    sign_in(page, web, stack.admin_token, project)
    review = f"{web.url}/p/{project}/texts?job={job_id}"
    page.goto(review)
    rows = page.locator("li.row")
    expect(rows).to_have_count(6)
    shoot(page, "review")

    # Edit in place.
    first = rows.nth(0)
    first_id = first.get_attribute("data-name")
    first.locator("details.edit summary").click()
    first.locator("textarea[name=text]").fill("An edited sentence about aspirin.")
    first.locator("button:has-text('Save')").click()
    expect(page.locator(".notice")).to_have_text("Saved.")
    expect(page.locator(f"li[data-name='{first_id}'] p.text").first).to_have_text("An edited sentence about aspirin.")

    # A conflicting edit: someone else saves while this page is open.
    row = page.locator(f"li[data-name='{first_id}']")
    row.locator("details.edit summary").click()
    row.locator("textarea[name=text]").fill("My late edit.")
    name = f"projects/{project}/stagedTexts/{first_id}"
    admin.tasks.UpdateStagedText(
        task_pb.UpdateStagedTextRequest(
            staged_text=task_pb.StagedText(name=name, text="Their edit, saved first."),
            update_mask=FieldMask(paths=["text"]),
        ),
        timeout=10,
    )
    row.locator("button:has-text('Save')").click()
    expect(page.locator("h1")).to_contain_text("changed this text")
    expect(page.locator("#current-version")).to_have_text("Their edit, saved first.")
    expect(page.locator("#your-version")).to_have_value("My late edit.")
    shoot(page, "conflict")
    stored = admin.tasks.GetStagedText(task_pb.GetStagedTextRequest(name=name), timeout=10).staged_text
    assert stored.text == "Their edit, saved first."
    page.click("button:has-text('Save my version')")
    expect(page.locator(f"li[data-name='{first_id}'] p.text").first).to_have_text("My late edit.")

    # Tag, then remove the tag.
    row = page.locator(f"li[data-name='{first_id}']")
    row.locator("input[name=add]").fill("reviewed")
    row.locator("button:has-text('Tag')").click()
    expect(page.locator(f"li[data-name='{first_id}'] .tags")).to_contain_text("reviewed")
    assert "reviewed" in admin.tasks.GetStagedText(task_pb.GetStagedTextRequest(name=name), timeout=10).staged_text.tags

    # Discard with the keyboard (j/k move between rows, d discards the focused one), then restore.
    page.locator(f"li[data-name='{first_id}']").focus()
    page.keyboard.press("j")
    expect(page.locator(f"li[data-name='{first_id}']")).not_to_be_focused()
    page.keyboard.press("k")
    expect(page.locator(f"li[data-name='{first_id}']")).to_be_focused()
    page.keyboard.press("d")
    expect(page.locator(".notice")).to_contain_text("Discarded 1")
    expect(page.locator(f"li[data-name='{first_id}'] .state")).to_have_text("discarded")
    page.locator(f"li[data-name='{first_id}'] button[data-action=restore]").click()
    expect(page.locator(f"li[data-name='{first_id}'] .state")).to_have_text("staged")

    # Import two selected texts, then the rest of the job.
    second_id = rows.nth(1).get_attribute("data-name")
    page.locator(f"li[data-name='{first_id}'] input.select").check()
    page.locator(f"li[data-name='{second_id}'] input.select").check()
    page.click("button:has-text('Import selected')")
    expect(page.locator(".notice")).to_contain_text("Imported 2")
    page.click("button:has-text('Import all staged texts of this job')")
    expect(page.locator(".notice")).to_contain_text("Imported 4")
    page.goto(f"{web.url}/p/{project}/tasks?tag=synthetic")
    expect(page.locator("tbody tr[data-name]")).to_have_count(6)
    expect(page.locator("tbody")).to_contain_text("My late edit.")
    shoot(page, "tasks")

    # Download the filtered texts as CSV: every text of the job, with its edits.
    page.goto(review)
    with page.expect_download() as download:
        page.click("#download-csv")
    records = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert len(records) == 6
    assert "My late edit." in {r["text"] for r in records}
    assert {r["name"] for r in records} == {t.name for t in _texts(stack, project, job.name)}
    # JSON too, in the annotation platform's import shape.
    with page.expect_download() as download:
        page.click("#download-json")
    items = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert len(items) == 6 and "My late edit." in {item["text"] for item in items}
    # And Label Studio's task import: the text in data, lineage and the synthetic mark in meta.
    with page.expect_download() as download:
        page.click("#download-label-studio")
    assert download.value.suggested_filename.endswith(".label-studio.json")
    studio_tasks = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert len(studio_tasks) == 6 and "My late edit." in {task["data"]["text"] for task in studio_tasks}
    assert all(task["meta"]["synthetic"] is True for task in studio_tasks)
    assert page.script_errors == []


def _texts(stack, project: str, job_name: str) -> list[task_pb.StagedText]:
    return list(
        stack.admin()
        .tasks.ListStagedTexts(
            task_pb.ListStagedTextsRequest(
                parent=f"projects/{project}", page_size=100, filter=task_pb.StagedTextFilter(generation_job=job_name)
            ),
            timeout=10,
        )
        .staged_texts
    )


def test_a_project_token_cannot_reach_admin_pages(page, web, stack, fake_llm):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    sign_in(page, web, _project_token(stack, project))
    # A choice the page never offered (a forged form) is refused by the gateway.
    page.locator("#project").evaluate("select => select.add(new Option('x', 'someone-elses-project', true, true))")
    page.click("#project-form button[type=submit]")
    expect(page.locator("#error-project")).to_contain_text("may not act")
    choose_project(page, project)
    expect(page.locator("header nav")).not_to_contain_text("Providers")
    for path in ("/admin/providers", "/admin/tokens", "/admin/providers/new?kind=openai"):
        response = page.goto(f"{web.url}{path}")
        assert response.status == 403, path
        expect(page.locator(".error")).to_contain_text("admin token")
    # Another project's pages are refused too, and it stays out of the project menu.
    response = page.goto(f"{web.url}/p/someone-elses-project/texts")
    assert response.status == 403
    page.goto(f"{web.url}/projects")
    expect(page.locator("main")).not_to_contain_text("someone-elses-project")
    # The token's own project works (positive control).
    response = page.goto(f"{web.url}/p/{project}/generate")
    assert response.status == 200


def test_admin_creates_a_token_whose_secret_is_shown_once_and_revokes_it(page, web, stack, shoot):
    project = new_project()
    sign_in(page, web, stack.admin_token)
    page.goto(f"{web.url}/admin/tokens")
    form = page.locator("#token-form")
    form.locator("input[name=display_name]").fill(f"platform {project}")
    form.locator("input[name=projects]").fill(project)
    form.locator("button[type=submit]").click()
    secret = page.locator("#new-secret").input_value()
    assert len(secret) > 20
    token_name = page.locator(".secret code").inner_text()
    shoot(page, "tokens")
    # The new token works until it is revoked.
    check = stack.clients(secret).providers.ListProjectProviders
    check(provider_pb.ListProjectProvidersRequest(project=f"projects/{project}"), timeout=10)
    assert token_name in _token_names(stack)
    page.click("#revoke-new button")
    expect(page.locator(".notice")).to_contain_text(f"Revoked {token_name}")
    assert token_name not in _token_names(stack)
    # The secret was on that one page only.
    page.goto(f"{web.url}/admin/tokens")
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content()


def _token_names(stack) -> set[str]:
    names, request = set(), token_pb.ListTokensRequest(page_size=1000)
    while True:
        reply = stack.admin().tokens.ListTokens(request, timeout=10)
        names |= {token.name for token in reply.tokens}
        if not reply.next_page_token:
            return names
        request.page_token = reply.next_page_token


def test_a_hostile_provider_answer_is_shown_as_text(page, web, stack, fake_llm, workers):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    fake_llm.configure(fixed_reply=HOSTILE)
    # The job page streams the texts in (inserted by the script) ...
    fake_llm.configure(rate_500=1.0)
    sign_in(page, web, stack.admin_token, project)
    job = _job(stack, project, 2, prompt="Say something.")
    job_id = job.name.rsplit("/", 1)[-1]
    page.goto(f"{web.url}/p/{project}/jobs/{job_id}")
    fake_llm.configure(rate_500=0.0)
    live = page.locator("#live-texts li p.text")
    expect(live).to_have_count(2, timeout=90_000)
    expect(live.first).to_have_text(HOSTILE)
    assert page.locator("#live-texts img, #live-texts script").count() == 0
    # ... and the review page renders them on the server.
    page.goto(f"{web.url}/p/{project}/texts?job={job_id}")
    expect(page.locator("li.row p.text").first).to_have_text(HOSTILE)
    assert page.locator("#texts img, #texts script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_a_form_without_its_csrf_token_is_refused(page, web, stack, fake_llm, workers):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    job = _wait_job(stack, _job(stack, project, 2, prompt="Write one sentence.").name)
    sign_in(page, web, stack.admin_token, project)
    page.goto(f"{web.url}/p/{project}/texts?job={job.name.rsplit('/', 1)[-1]}")
    row = page.locator("li.row").first
    text_id = row.get_attribute("data-name")
    discard = row.locator("form:has(button[data-action=discard])")
    discard.evaluate("form => form.querySelector('input[name=csrf_token]').remove()")
    discard.locator("button").click()
    expect(page.locator(".error")).to_contain_text("security token")
    assert page.locator("h1").inner_text() == "Not allowed"
    name = f"projects/{project}/stagedTexts/{text_id}"
    state = stack.admin().tasks.GetStagedText(task_pb.GetStagedTextRequest(name=name), timeout=10).staged_text.state
    assert state == task_pb.STAGED_TEXT_STATE_STAGED
    # A wrong token is refused the same way; the untouched form works (positive control).
    page.go_back()
    page.reload()
    row = page.locator(f"li[data-name='{text_id}']")
    row.locator("form:has(button[data-action=discard]) input[name=csrf_token]").evaluate("i => i.value = 'forged'")
    row.locator("button[data-action=discard]").click()
    expect(page.locator(".error")).to_contain_text("security token")
    page.go_back()
    page.reload()
    page.locator(f"li[data-name='{text_id}'] button[data-action=discard]").click()
    expect(page.locator(".notice")).to_contain_text("Discarded 1")
    state = stack.admin().tasks.GetStagedText(task_pb.GetStagedTextRequest(name=name), timeout=10).staged_text.state
    assert state == task_pb.STAGED_TEXT_STATE_DISCARDED


def test_sign_out_and_session_expiry_end_the_session(page, web, stack):
    project = new_project()
    sign_in(page, web, stack.admin_token, project)
    page.goto(f"{web.url}/p/{project}/texts")
    expect(page).to_have_url(re.compile(r"/texts$"))
    page.click("button:has-text('Sign out')")
    expect(page.locator(".notice")).to_have_text("You are signed out.")
    page.goto(f"{web.url}/p/{project}/texts")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    # A cookie encrypted with the server's key, but older than the session's lifetime.
    from cryptography.fernet import Fernet

    key = web.settings.session_keys.get_secret_value().split(",")[0]
    issued = int(time.time()) - web.settings.session_max_age_seconds - 60
    old = {
        "csrf": "c",
        "sid": "s",
        "token": stack.admin_token,
        "admin": True,
        "projects": [project],
        "signed_in_at": issued,
        "notice": "",
    }
    cookie = Fernet(key.encode()).encrypt_at_time(json.dumps(old).encode(), issued).decode()
    page.context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": web.url}])
    page.goto(f"{web.url}/p/{project}/texts")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.locator(".notice")).to_contain_text("expired")
    # The same cookie, fresh, is a valid session (positive control).
    fresh = {**old, "signed_in_at": time.time()}
    cookie = Fernet(key.encode()).encrypt(json.dumps(fresh).encode()).decode()
    page.context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": web.url}])
    page.goto(f"{web.url}/p/{project}/texts")
    expect(page).to_have_url(re.compile(r"/texts$"))


def test_pages_send_a_content_security_policy_without_inline_scripts(page, web):
    response = page.goto(f"{web.url}/sign-in")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.locator("script:not([src])").count() == 0
    set_cookie = (response.header_value("set-cookie") or "").lower()
    assert "httponly" in set_cookie
    assert "samesite=strict" in set_cookie


def test_gateway_errors_show_next_to_their_fields(page, web, stack, fake_llm, workers):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    sign_in(page, web, stack.admin_token, project)
    page.goto(f"{web.url}/p/{project}/generate")
    # `{drug name}` is not a variable name: the gateway refuses the prompt; 5000 texts
    # is over the gateway's maximum.
    page.fill("#prompt", "A note about {drug name}.")
    page.fill("input[name=text_count]", "5000")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("button:has-text('Start the job')")
    assert answer.value.status == 400
    expect(page.locator("#error-prompt")).to_contain_text("{drug name}")
    expect(page.locator("#error-text_count")).to_contain_text("between 1 and 1000")
    expect(page.locator("#prompt")).to_have_value("A note about {drug name}.")
    assert "Traceback" not in page.content()
    # Corrected, the same form starts the job (positive control).
    page.fill("#prompt", "A note about {drug}.")
    page.locator(".variable[data-variable='drug'] textarea").fill("aspirin")
    page.fill("input[name=text_count]", "2")
    page.click("button:has-text('Start the job')")
    expect(page).to_have_url(re.compile(rf"/p/{project}/jobs/[^/]+$"))


def test_review_pages_follow_the_gateways_page_tokens(page, web, stack, fake_llm, workers):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    job = _wait_job(stack, _job(stack, project, 30, prompt="Write one sentence.").name)
    assert job.counts.produced == 30
    sign_in(page, web, stack.admin_token, project)
    page.goto(f"{web.url}/p/{project}/texts?state=staged")
    expect(page.locator("li.row")).to_have_count(web.settings.page_size)
    first_page = set(page.locator("li.row").evaluate_all("rows => rows.map(r => r.dataset.name)"))
    page.click("a[rel=next]")
    expect(page.locator("li.row")).to_have_count(30 - web.settings.page_size)
    second_page = set(page.locator("li.row").evaluate_all("rows => rows.map(r => r.dataset.name)"))
    assert not first_page & second_page
    assert first_page | second_page == {t.name.rsplit("/", 1)[-1] for t in _texts(stack, project, job.name)}
    # The filters travel with the page token; the last page has no next link.
    assert "state=staged" in page.url
    expect(page.locator("a[rel=next]")).to_have_count(0)
    page.click("a:has-text('First page')")
    expect(page.locator("li.row")).to_have_count(web.settings.page_size)


def test_live_job_views_are_bounded_per_session(page, web, stack, fake_llm, workers):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    fake_llm.configure(rate_500=1.0)
    sign_in(page, web, stack.admin_token, project)
    job_id = _job(stack, project, 3, prompt="Write one sentence.").name.rsplit("/", 1)[-1]
    job_url = f"{web.url}/p/{project}/jobs/{job_id}"
    wait_for(lambda: web.open_streams() == 0, "streams of earlier tests to close")
    views = []
    for _ in range(web.settings.max_streams_per_session):
        view = page.context.new_page()
        view.goto(job_url)
        views.append(view)
    wait_for(lambda: web.open_streams() == web.settings.max_streams_per_session, "every view to stream")
    refused = page.context.request.get(f"{job_url}/events")
    assert refused.status == 429
    assert "live job views open" in refused.text()
    views.pop(0).close()
    wait_for(lambda: web.open_streams() == web.settings.max_streams_per_session - 1, "the closed view's stream to end")
    latest = page.context.new_page()
    latest.goto(job_url)
    wait_for(lambda: web.open_streams() == web.settings.max_streams_per_session, "the new view to stream")
    fake_llm.configure(rate_500=0.0)
    expect(latest.locator("#live-texts li")).to_have_count(3, timeout=90_000)
    # Streams end with their job, and free their places.
    wait_for(lambda: web.open_streams() == 0, "the streams to end with the job", timeout=60)


def test_a_running_job_can_be_cancelled_from_its_page(page, web, stack, fake_llm, workers):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    fake_llm.configure(rate_500=1.0)
    sign_in(page, web, stack.admin_token, project)
    job = _job(stack, project, 5, prompt="Write one sentence.")
    page.goto(f"{web.url}/p/{project}/jobs/{job.name.rsplit('/', 1)[-1]}")
    page.click("#cancel-form button")
    expect(page.locator(".notice")).to_contain_text("cancelled")
    expect(page.locator("[data-count=state]")).to_have_text("cancelled")
    expect(page.locator("#cancel-form")).to_have_count(0)
    stored = stack.admin().generation.GetGenerationJob(gen_pb.GetGenerationJobRequest(name=job.name), timeout=10)
    assert stored.generation_job.state == gen_pb.GENERATION_JOB_STATE_CANCELLED


def test_a_labelled_job_s_page_shows_its_entity_balance_as_texts_arrive(page, web, stack, fake_llm, workers):
    project = new_project()
    _provider_with_default(stack, fake_llm, project)
    # Every provider call fails until the job page is open, so the balance it ends with
    # came through the live stream, not the first render.
    fake_llm.configure(rate_500=1.0, entity_lexicon={"aspirin": "DRUG"})
    sign_in(page, web, stack.admin_token, project)
    job = _job(
        stack,
        project,
        6,
        prompt="A note about {drug}.",
        variables=[gen_pb.PromptVariable(name="drug", values=["aspirin", "ibuprofen"])],
        labels=[gen_pb.EntityLabel(name="DRUG", description="a medication")],
        variable_labels={"drug": "DRUG"},
    )
    page.goto(f"{web.url}/p/{project}/jobs/{job.name.rsplit('/', 1)[-1]}")
    shown = page.locator("[data-count=entity_balance]")
    expect(shown).to_have_text("DRUG 0 texts, 0 spans · 0 dropped")

    fake_llm.configure(rate_500=0.0)
    expect(page.locator("#live-texts li")).to_have_count(6, timeout=90_000)
    expect(page.locator("[data-count=state]")).to_have_text("succeeded")
    exact = (
        stack.admin()
        .generation.GetEntityBalance(gen_pb.GetEntityBalanceRequest(scope=job.name), timeout=10)
        .entity_balance
    )
    (drug,) = exact.labels
    assert (exact.texts, drug.texts) == (6, 6), "every text marks its drug (the binding)"
    expect(shown).to_have_text(f"DRUG 6 texts, {drug.spans} spans · {exact.dropped_spans} dropped")
    assert page.script_errors == []
