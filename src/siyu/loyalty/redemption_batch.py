"""Group commit for coupon redemptions: concurrent POS calls in one process share one write.

A store fleet redeems coupons one per order, thousands a second at peak, through a handful of
API processes. Alone, each redemption is a transaction of its own (BEGIN, read, write,
COMMIT), and on a small PostgreSQL host the per-transaction work, not the rows, is the
ceiling. `RedemptionBatcher` lets the requests that arrive while one batch is being written
share the next write, the way a database shares one log flush between commits:

- The first caller to find no batch in flight leads: it takes every waiting request (up to
  `max_batch`), reads their coupons, templates and whether their orders already have a
  redemption in one query, validates each request in Python exactly as
  `redemption.redeem_coupons` does, writes every request that passed in one statement
  (`redeem_write.redeem_many`, whose UPDATE re-checks each coupon's state: ADR 0001), and
  hands each caller its own outcome. It then passes the lead to the oldest waiting caller.
  There is no timer: a request waits only for the batch in front of it.
- Two round trips per batch, on an autocommit connection: the write is one statement, so it
  is atomic by itself, and because its UPDATE re-checks every coupon nothing the read saw
  needs to be locked in between (the same reasoning as the single-request path).
- Each request still succeeds or fails on its own. It names one coupon, so that coupon's
  conditional UPDATE is the whole decision: a coupon taken meanwhile by another process is
  refused (COUPON_STATE_CONFLICT) and the rest of the batch commits.
- Anything unusual goes through `redeem_coupons` in a transaction of its own, so the rules
  live in one place: several coupons on one order (all-or-nothing), no coupon named (redeem
  what the order reserved), an order that already has a redemption (a replay, or a refunded
  order), two requests in one batch naming the same coupon or order, and every request of a
  batch whose write failed (a deadlock, a unique key): that statement changed nothing.

Only PostgreSQL batches. SQLite has one writer and no network round trip to save, so there
each request simply runs alone.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.loyalty import redeem_write
from siyu.loyalty.coupons import Cart
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.issuance import SHANGHAI
from siyu.loyalty.models import Coupon, CouponRedemption, CouponTemplate, RedemptionState
from siyu.loyalty.redemption import (
    CouponQuote,
    RedemptionRecord,
    not_held,
    redeem_coupons,
    redeemed_record,
    redemption_write,
    validate_pairs,
)

DEFAULT_MAX_BATCH = 64


@dataclass(frozen=True)
class RedemptionRequest:
    """One POS call: use these coupons (or, with none named, those the order reserved) on
    this order; the arguments of `redemption.redeem_coupons`."""

    member_id: int
    order_no: str
    cart: Cart
    now: datetime
    coupon_ids: list[int] | None = None
    tz: ZoneInfo = SHANGHAI


@dataclass(eq=False)
class _Request:
    ask: RedemptionRequest
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    records: list[RedemptionRecord] | None = None
    error: BaseException | None = None

    @property
    def single_coupon(self) -> int | None:
        coupon_ids = self.ask.coupon_ids
        if coupon_ids is not None and len(coupon_ids) == 1:
            return coupon_ids[0]
        return None

    @property
    def coupon_id(self) -> int:
        """The one coupon of a request that runs in a batch."""
        assert self.single_coupon is not None
        return self.single_coupon

    def outcome(self) -> list[RedemptionRecord]:
        if self.error is not None:
            raise self.error
        assert self.records is not None, "a request left its batch without an outcome"
        return self.records


class RedemptionBatcher:
    """`redeem` has the contract of `redemption.redeem_coupons` plus its own transaction;
    safe to call from many threads (one batcher per process, shared by its request threads)."""

    def __init__(
        self, session_factory: sessionmaker[Session], *, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._factory = session_factory
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: deque[_Request] = deque()
        self._leading = False  # invariant: no leader ⇒ nobody waiting
        self._autocommit = session_factory.kw["bind"].execution_options(
            isolation_level="AUTOCOMMIT"
        )
        self.batches = 0  # batch writes so far, and the requests they carried (benchmarks)
        self.batched_requests = 0
        self._batches = session_factory.kw["bind"].dialect.name == "postgresql"

    def redeem(
        self,
        *,
        member_id: int,
        order_no: str,
        cart: Cart,
        now: datetime,
        tz: ZoneInfo = SHANGHAI,
        coupon_ids: list[int] | None = None,
    ) -> list[RedemptionRecord]:
        request = _Request(RedemptionRequest(member_id, order_no, cart, now, coupon_ids, tz))
        if not self._batches:
            self._alone(request)
            return request.outcome()
        with self._lock:
            self._waiting.append(request)
            if not self._leading:
                self._leading = request.leads = True
        if not request.leads:
            request.ready.wait()
        if request.leads:  # first in, or handed the lead by the previous batch's leader
            self._lead()
        return request.outcome()

    def _lead(self) -> None:
        with self._lock:
            batch = [
                self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))
            ]
        try:
            self._run(batch)
        except BaseException as exc:  # never leave a caller waiting forever
            for request in batch:
                if request.records is None and request.error is None:
                    request.error = exc
            raise
        finally:
            with self._lock:
                if self._waiting:
                    successor = self._waiting[0]
                    successor.leads = True
                    successor.ready.set()
                else:
                    self._leading = False
            for request in batch:
                request.ready.set()

    def redeem_batch(
        self, requests: list[RedemptionRequest]
    ) -> list[list[RedemptionRecord] | LoyaltyError]:
        """Redeem these requests as one batch in the calling thread (an offline POS uploading
        its day, or a test that needs to know what shares a batch); each gets its own
        records or its own refusal, in order."""
        batch = [_Request(ask) for ask in requests]
        if self._batches:
            self._run(batch)
        else:
            for request in batch:
                self._alone(request)
        outcomes: list[list[RedemptionRecord] | LoyaltyError] = []
        for request in batch:
            if isinstance(request.error, LoyaltyError):
                outcomes.append(request.error)
            else:
                outcomes.append(request.outcome())
        return outcomes

    def _run(self, batch: list[_Request]) -> None:
        together, alone = _split(batch)
        if together:
            try:
                alone += self._redeem_together(together)
            except SQLAlchemyError:
                # The batch rolled back whole; each request gets its own transaction.
                alone += together
        for request in alone:
            self._alone(request)

    def _alone(self, request: _Request) -> None:
        request.records = request.error = None
        try:
            with transaction(self._factory) as db_session:
                request.records = redeem_coupons(
                    db_session,
                    member_id=request.ask.member_id,
                    order_no=request.ask.order_no,
                    cart=request.ask.cart,
                    now=request.ask.now,
                    tz=request.ask.tz,
                    coupon_ids=request.ask.coupon_ids,
                )
        except LoyaltyError as exc:
            request.error = exc

    def _redeem_together(self, requests: list[_Request]) -> list[_Request]:
        """Validate and write the batch in two round trips; outcomes are set only once the
        write is done. Returns the requests that must run alone (their order has history).

        Both run on an autocommit connection: the write is one statement, atomic by itself,
        and its UPDATE re-checks every coupon, so nothing the read saw needs to be held."""
        records: dict[int, list[RedemptionRecord]] = {}
        errors: dict[int, LoyaltyError] = {}
        later: list[_Request] = []
        writes: list[redeem_write.RedemptionWrite] = []
        quotes: dict[int, CouponQuote] = {}
        with self._autocommit.connect() as connection:
            with Session(bind=connection) as db_session:
                held = _load(db_session, requests)
            for index, request in enumerate(requests):
                pair, prior = held[index]
                if prior is not None:
                    later.append(request)
                    continue
                try:
                    quote = _validate(request, pair)
                except LoyaltyError as exc:
                    errors[index] = exc
                    continue
                quotes[index] = quote
                writes.append(
                    redemption_write(
                        quote,
                        request.ask.member_id,
                        request.ask.order_no,
                        request.ask.cart,
                        request.ask.now,
                    )
                )
            taken = redeem_write.redeem_many(connection, writes)
        for index, quote in quotes.items():
            request = requests[index]
            redemption_id = taken.get(quote.coupon_id)
            if redemption_id is None:
                errors[index] = redeem_write.taken(quote.coupon_id)
            else:
                records[index] = [
                    redeemed_record(quote, redemption_id, request.ask.order_no, request.ask.now)
                ]
        self.batches += 1
        self.batched_requests += len(requests) - len(later)
        for index, request in enumerate(requests):
            request.records = records.get(index)
            request.error = errors.get(index)
        return later


def _validate(request: _Request, pair: tuple[Coupon, CouponTemplate] | None) -> CouponQuote:
    """The checks of `redeem_coupons` for one named coupon (its own errors, its own words)."""
    if pair is None or pair[0].member_id != request.ask.member_id:
        raise not_held(request.ask.member_id, [request.coupon_id])
    validation = validate_pairs(
        [pair],
        cart=request.ask.cart,
        now=request.ask.now,
        tz=request.ask.tz,
        order_no=request.ask.order_no,
    )
    return validation.coupons[0]


def _split(batch: list[_Request]) -> tuple[list[_Request], list[_Request]]:
    """Requests that can share a transaction, and those that run alone (see the docstring)."""
    together: list[_Request] = []
    alone: list[_Request] = []
    coupons: set[int] = set()
    orders: set[str] = set()
    for request in batch:
        coupon_id = request.single_coupon
        if coupon_id is None or coupon_id in coupons or request.ask.order_no in orders:
            alone.append(request)
            continue
        coupons.add(coupon_id)
        orders.add(request.ask.order_no)
        together.append(request)
    return together, alone


def _load_statement() -> sa.Select[int, Coupon | None, CouponTemplate | None, str | None]:
    """Per request, in its order: its coupon and template (none if the id is unknown) and what
    its order already did ('redeemed' if it has a standing redemption, else 'reversed' if it
    was refunded, else none): the batch's one read. Built once."""
    asked = (
        sa.func.unnest(
            sa.bindparam("asked_coupon_ids", type_=postgresql.ARRAY(sa.BigInteger())),
            sa.bindparam("asked_order_nos", type_=postgresql.ARRAY(sa.String())),
        )
        .table_valued(sa.column("coupon_id", sa.BigInteger()), sa.column("order_no", sa.String()))
        .render_derived("asked")
    )
    r = CouponRedemption
    prior = (
        sa.select(r.state)
        .where(r.order_no == asked.c.order_no)
        .order_by(sa.case((r.state == RedemptionState.REDEEMED.value, 0), else_=1))
        .limit(1)
        .scalar_subquery()
    )
    return (
        sa.select(asked.c.coupon_id, Coupon, CouponTemplate, prior.label("prior"))
        .select_from(asked)
        .outerjoin(Coupon, Coupon.id == asked.c.coupon_id)
        .outerjoin(CouponTemplate, CouponTemplate.id == Coupon.template_id)
    )


_LOAD = _load_statement()


def _load(
    db_session: Session, requests: list[_Request]
) -> list[tuple[tuple[Coupon, CouponTemplate] | None, str | None]]:
    rows = db_session.execute(
        _LOAD,
        {
            "asked_coupon_ids": [r.coupon_id for r in requests],
            "asked_order_nos": [r.ask.order_no for r in requests],
        },
    ).all()
    by_coupon: dict[int, tuple[tuple[Coupon, CouponTemplate] | None, str | None]] = {}
    for coupon_id, coupon, template, prior in rows:
        pair = (coupon, template) if coupon is not None and template is not None else None
        by_coupon[coupon_id] = (pair, prior)
    return [by_coupon[r.coupon_id] for r in requests]
