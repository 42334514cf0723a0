"""Other domains add action kinds by exposing `journey_actions()` from a provider module."""

from __future__ import annotations

import pytest

from siyu.channels.base import SandboxedRenderer
from siyu.journeys import plugins
from siyu.journeys.actions import ActionRegistry, default_registry
from siyu.journeys.errors import JourneyError
from siyu.journeys.service import parse_definition

PROVIDER = "tests.unit.journeys.example_provider"
COUPON_JOURNEY = """
name: first-order-coupon
trigger: {type: event, event: member_registered}
steps:
  - {id: coupon, type: action, action: issue_coupon, params: {template: FIRST20}}
"""


def test_a_provider_module_contributes_its_action_kinds() -> None:
    registry = ActionRegistry()
    for action in plugins.provided_actions([PROVIDER]):
        registry.register(action)

    definition = parse_definition(COUPON_JOURNEY, actions=registry)

    assert registry.kinds() == ["issue_coupon"]
    assert definition.action_kinds() == {"issue_coupon"}


def test_absent_provider_modules_are_skipped() -> None:
    assert plugins.provided_actions(["siyu.nowhere.journey_actions", "nowhere.at_all"]) == []


def test_until_loyalty_lands_a_coupon_journey_is_refused_naming_the_available_actions() -> None:
    registry = default_registry(renderer=SandboxedRenderer())
    if "issue_coupon" in registry.kinds():
        pytest.skip("loyalty provides issue_coupon now")

    with pytest.raises(JourneyError, match=r"unknown action 'issue_coupon'; available: .*add_tag"):
        parse_definition(COUPON_JOURNEY, actions=registry)


def test_a_provider_action_validates_its_params_when_the_journey_is_applied() -> None:
    registry = ActionRegistry()
    for action in plugins.provided_actions([PROVIDER]):
        registry.register(action)

    with pytest.raises(JourneyError, match="issue_coupon: `template`"):
        parse_definition(COUPON_JOURNEY.replace("template: FIRST20", "amount: 5"), actions=registry)
