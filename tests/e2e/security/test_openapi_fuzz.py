"""A short schemathesis run against the OpenAPI spec: no input makes the API answer 5xx.

Every operation gets `SIYU_FUZZ_EXAMPLES` generated requests (2 by default, so the run stays
well under a minute on CI; raise it for a long hunt). SQLite only: the point is input
handling, not the engine.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.openapi.loaders import from_asgi

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.factories.people import seed_people

EXAMPLES = int(os.environ.get("SIYU_FUZZ_EXAMPLES", "2"))
# 503 is the deliberate answer of the WeCom callback while no WeCom app is configured.
NOT_CONFIGURED = {"GET /wecom/callback: 503", "POST /wecom/callback: 503"}
# Operations that rebuild the warehouse or run a worker pass: correct but seconds each.
_SLOW = r"/(refresh|export|issue|run|sync|erase)"


def test_no_generated_request_makes_the_api_fail(sqlite_siyu: Siyu) -> None:
    seed_people(sqlite_siyu.session_factory)
    schema = from_asgi("/api/openapi.json", create_app(sqlite_siyu)).exclude(path_regex=_SLOW)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 60  # the whole API, not an empty spec

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def probe(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            try:
                status = case.call().status_code
            except Exception as error:  # the ASGI test transport re-raises a server error
                status = 500
                detail = type(error).__name__
            else:
                detail = ""
            if status >= 500:
                failures.append(f"{case.method} {case.path}: {status} {detail}".strip())

        probe()
    unexpected = sorted(set(failures) - NOT_CONFIGURED)
    assert unexpected == [], "\n".join(unexpected)
