"""Console hardening: every form refuses a POST without the session's CSRF token, and the
session is renewed at login (no fixation)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.e2e.console.helpers import csrf_from, login
from tests.e2e.staff.conftest import PASSWORD
from tests.e2e.staff.conftest import people as people
from tests.factories.people import People


def console_posts(routes: Iterable[Any], prefix: str = "") -> Iterator[str]:
    """Every POST path of the console, walking included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from console_posts(inner.routes, prefix + (route.include_context.prefix or ""))
        elif "POST" in getattr(route, "methods", ()) and (prefix + route.path).startswith(
            "/console"
        ):
            yield prefix + route.path


def test_every_console_form_refuses_a_post_without_the_csrf_token(
    siyu: Siyu, people: People
) -> None:
    app = create_app(siyu)
    paths = sorted({re.sub(r"\{[^}]+\}", "1", p) for p in console_posts(app.routes)})
    assert len(paths) >= 15  # the enumeration found the forms (login, tasks, keys, segments…)
    with TestClient(app) as client:
        assert login(client, "zhang.hq", PASSWORD).status_code == 303
        for path in paths:
            response = client.post(path, data={"name": "x"}, follow_redirects=False)
            assert response.status_code == 403, (path, response.status_code)
            forged = client.post(path, data={"csrf_token": "forged"}, follow_redirects=False)
            assert forged.status_code == 403, (path, forged.status_code)


def test_the_session_is_renewed_at_login(siyu: Siyu, people: People) -> None:
    with TestClient(create_app(siyu)) as client:
        before_token = csrf_from(client.get("/console/login").text)
        before_cookie = client.cookies.get("session") or next(iter(client.cookies.values()), "")
        assert login(client, "xiaoli", PASSWORD).status_code == 303
        after_cookie = client.cookies.get("session") or next(iter(client.cookies.values()), "")
        after_token = csrf_from(client.get("/console/tasks").text)
    assert after_cookie and after_cookie != before_cookie
    assert after_token != before_token  # a token planted before login is worthless after it


def test_a_session_cookie_from_before_login_does_not_sign_anyone_in(
    siyu: Siyu, people: People
) -> None:
    with TestClient(create_app(siyu)) as attacker:
        attacker.get("/console/login")
        planted = dict(attacker.cookies)
    with TestClient(create_app(siyu)) as victim:
        victim.cookies.update(planted)
        assert login(victim, "xiaoli", PASSWORD).status_code == 303
    with TestClient(create_app(siyu)) as attacker_again:
        attacker_again.cookies.update(planted)
        response = attacker_again.get("/console/tasks", follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert "/console/login" in response.headers["location"]
