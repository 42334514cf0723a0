"""Per-code statistics: adds, deletions, net and first-order conversion."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from siyu.bootstrap import Siyu
from siyu.growth.stats import code_stats
from tests.integration.growth.scenario import two_codes_three_customers


def test_each_code_counts_its_adds_deletions_net_and_first_orders(siyu: Siyu) -> None:
    # given two scans of the SH001 counter code (one later deleted Xiao Li, one ordered)
    # and one scan of Xiao Li's card
    asyncio.run(two_codes_three_customers(siyu))

    # when the statistics are read
    stats = code_stats(session_factory=siyu.session_factory)

    # then
    counter, card = stats
    assert (counter.name, counter.adds, counter.deletions, counter.net) == (
        "SH001 counter",
        2,
        1,
        1,
    )
    assert (counter.customer_deletions, counter.attributed, counter.converted) == (1, 2, 1)
    assert counter.conversion == 0.5
    assert (card.name, card.adds, card.deletions, card.net) == ("Xiao Li card", 1, 0, 1)
    assert (card.attributed, card.converted, card.conversion) == (1, 0, 0.0)


def test_a_window_that_ends_before_the_adds_counts_nothing(siyu: Siyu) -> None:
    asyncio.run(two_codes_three_customers(siyu))

    stats = code_stats(
        session_factory=siyu.session_factory, until=siyu.clock.now() - timedelta(hours=1)
    )

    assert [(s.adds, s.attributed, s.conversion) for s in stats] == [(0, 0, None), (0, 0, None)]
