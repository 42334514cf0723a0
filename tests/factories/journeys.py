"""Personas and helpers for journey and delivery tests: Demo Tea's members, events and orders."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from siyu.bootstrap import Siyu
from siyu.channels import journey_runtime
from siyu.db import transaction
from siyu.identity.models import Identity, Member
from siyu.ingest.models import Event
from siyu.journeys import service as journey_service
from siyu.journeys.runtime import JourneyRuntime
from siyu.orders.models import OrderLine


def add_member(
    db: Session,
    *,
    name: str,
    registered_at: datetime,
    phone: str | None = None,
    email: str | None = None,
    birthday: date | None = None,
    store_code: str = "SH001",
) -> int:
    member = Member(
        name=name,
        gender="F",
        birthday=birthday,
        registered_at=registered_at,
        store_code=store_code,
        channel="pos",
        created_at=registered_at,
        updated_at=registered_at,
    )
    db.add(member)
    db.flush()
    for kind, value in (("phone", phone), ("email", email)):
        if value:
            db.add(
                Identity(type=kind, value=value, member_id=member.id, first_seen_at=registered_at)
            )
    db.flush()
    return member.id


def add_event(
    db: Session,
    *,
    member_id: int,
    type: str,
    at: datetime,
    properties: dict[str, object] | None = None,
) -> None:
    db.add(
        Event(
            event_id=f"test-{uuid.uuid4().hex}",
            type=type,
            occurred_at=at,
            member_id=member_id,
            identities={},
            properties=properties or {},
            received_at=at,
        )
    )
    db.flush()


def add_order(
    db: Session, *, member_id: int, order_id: str, at: datetime, amount: str = "58.00"
) -> None:
    db.add(
        OrderLine(
            order_id=order_id,
            line_no=1,
            member_id=member_id,
            paid_at=at,
            amount=Decimal(amount),
            status="paid",
            category="tea",
            sku="oolong",
            row_hash=uuid.uuid4().hex,
            imported_at=at,
        )
    )
    db.flush()


def apply_journey(siyu: Siyu, runtime: JourneyRuntime, text: str) -> None:
    with transaction(siyu.session_factory) as db:
        journey_service.apply_definition(
            db_session=db, now=siyu.clock.now(), text=text, actions=runtime.actions
        )


def runtime_for(siyu: Siyu) -> JourneyRuntime:
    return journey_runtime(siyu)
