"""Read views of members handed to the API and console: summaries, the 360 view, pages."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of results; `total` counts every match, `items` holds this page's."""

    items: list[T]
    total: int
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


class MemberSummary(BaseModel):
    id: int
    member_no: str | None
    name: str | None
    phone: str | None
    gender: str
    store_code: str | None
    channel: str | None
    registered_at: datetime | None


class IdentityRead(BaseModel):
    type: str
    value: str
    polluted: bool
    current: bool
    first_seen_at: datetime


class MemberTagRead(BaseModel):
    tag: str
    source: str
    tagged_at: datetime


class MergeRead(BaseModel):
    merged_id: int
    survivor_id: int
    via_type: str
    via_value: str
    reason: str
    merged_at: datetime


class OrderLineRead(BaseModel):
    line_no: int
    amount: Decimal
    status: str
    category: str | None
    sku: str | None


class OrderRead(BaseModel):
    """An order is every line sharing an order_id; refunded when any line is refunded."""

    order_id: str
    paid_at: datetime
    store_code: str | None
    channel: str | None
    amount: Decimal
    refunded: bool
    lines: list[OrderLineRead]


class MemberDetail(BaseModel):
    """The member 360: attributes, identities, tags, merge history and order totals."""

    id: int
    requested_id: int
    name: str | None
    gender: str
    birthday: date | None
    registered_at: datetime | None
    store_code: str | None
    channel: str | None
    member_nos: list[str]
    phone: str | None
    identities: list[IdentityRead]
    tags: list[MemberTagRead]
    merges: list[MergeRead]
    orders: int
    spend: Decimal


MemberPage = Page[MemberSummary]
OrderPage = Page[OrderRead]
