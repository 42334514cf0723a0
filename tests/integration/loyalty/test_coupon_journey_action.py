"""The `issue_coupon` journey action: registered through the plugins, keyed by the step."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.journeys.actions import ActionContext
from siyu.journeys.errors import JourneyError
from siyu.journeys.plugins import provided_actions
from siyu.loyalty.models import Coupon
from tests.integration.loyalty.coupon_fixtures import a_template, members


def _action() -> object:
    return next(a for a in provided_actions() if a.kind == "issue_coupon")


def test_the_action_issues_once_per_step_key_and_reports_a_spent_budget(sqlite_siyu: Siyu) -> None:
    siyu = sqlite_siyu
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, budget_total=1)
    wang_fang, li_na = members(siyu.session_factory, "Wang Fang", "Li Na")
    action = _action()
    outcomes = []
    for member_id, key in ((wang_fang, "k1"), (wang_fang, "k1"), (li_na, "k2")):
        with transaction(siyu.session_factory) as db:
            ctx = ActionContext(
                db_session=db,
                now=now,
                tz=ZoneInfo("Asia/Shanghai"),
                journey="welcome",
                version=1,
                step_id="gift",
                enrollment_id=1,
                member_id=member_id,
                idempotency_key=key,
                context={},
            )
            outcomes.append(action.execute(ctx, {"template": code}))  # type: ignore[attr-defined]
    with transaction(siyu.session_factory) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 1
    assert outcomes[0] == outcomes[1]
    assert outcomes[2] == "no coupon: TEA_100_20: all 1 coupons are issued"


def test_the_action_needs_a_template_or_a_pack() -> None:
    with pytest.raises(JourneyError):
        _action().validate({})  # type: ignore[attr-defined]
