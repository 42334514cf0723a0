"""Other domains add action kinds by exposing `journey_actions()` from a provider module."""

from __future__ import annotations

import pytest

from siyu.channels.base import SandboxedRenderer
from siyu.journeys import plugins
from siyu.journeys.actions import ActionRegistry, ChangeTag, default_registry
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


def test_the_default_registry_holds_the_built_in_and_the_installed_domains_actions() -> None:
    registry = default_registry(renderer=SandboxedRenderer())

    assert {"send_message", "call_webhook", "add_tag", "remove_tag"} <= set(registry.kinds())
    assert {"issue_coupon", "grant_points"} <= set(registry.kinds())  # siyu.loyalty
    assert "create_staff_task" in registry.kinds()  # siyu.staff
    assert parse_definition(COUPON_JOURNEY, actions=registry).action_kinds() == {"issue_coupon"}


def test_without_a_provider_a_coupon_journey_is_refused_naming_the_available_actions() -> None:
    registry = ActionRegistry()
    registry.register(ChangeTag(add=True))
    for action in plugins.provided_actions(["siyu.nowhere.journey_actions"]):
        registry.register(action)

    with pytest.raises(JourneyError, match=r"unknown action 'issue_coupon'; available: add_tag$"):
        parse_definition(COUPON_JOURNEY, actions=registry)


def test_a_provider_action_validates_its_params_when_the_journey_is_applied() -> None:
    registry = ActionRegistry()
    for action in plugins.provided_actions([PROVIDER]):
        registry.register(action)

    with pytest.raises(JourneyError, match="issue_coupon: `template`"):
        parse_definition(COUPON_JOURNEY.replace("template: FIRST20", "amount: 5"), actions=registry)
