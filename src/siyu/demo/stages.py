"""The demo's stages. Each uses the public service functions of one domain, as an operator's
script would, so the demo doubles as an end-to-end check that the domains compose."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from siyu.demo.build import DEMO_ADMIN, DEMO_USERS, DemoContext, DemoStage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from siyu.loyalty.coupons import Cart

HISTORY_DAYS = 900  # about two and a half years: two Double 11s, two CNYs, a 618 or two


def generate_brand(context: DemoContext) -> str:
    """Write "Demo Tea" as import files whose history ends today (business time zone)."""
    from siyu.generate.brand import generate_brand as write_brand

    today = context.now.astimezone(context.siyu.settings.tz).date()
    manifest = write_brand(
        context.input_dir,
        members=context.members,
        seed=context.seed,
        start=today - timedelta(days=HISTORY_DAYS),
        end=today,
    )
    counts = manifest["counts"]
    context.facts["generated"] = counts
    return (
        f"generated: {counts['stores']} stores, {counts['staff']} staff, "
        f"{counts['members']:,} members, {counts['order_lines']:,} order lines, "
        f"{counts['events']:,} events ({manifest['malformed_rows']} malformed rows on purpose)"
    )


def import_brand(context: DemoContext) -> str:
    """Import stores and staff, then members, orders and events, as `siyu import` does."""
    import sqlalchemy as sa

    from siyu.identity.models import Member
    from siyu.ingest import directory
    from siyu.ingest import service as ingest_service

    siyu, folder = context.siyu, context.input_dir
    for kind, importer in (("stores", directory.import_stores), ("staff", directory.import_staff)):
        importer(session_factory=siyu.session_factory, path=folder / f"{kind}.csv", now=context.now)
    imported: dict[str, dict[str, int]] = {}
    for kind, name in (
        ("members", "members.csv"),
        ("orders", "orders.csv"),
        ("events", "events.ndjson"),
    ):
        result = ingest_service.import_file(
            session_factory=siyu.session_factory,
            kind=kind,
            path=folder / name,
            now=context.now,
            tz=siyu.settings.tz,
            max_member_nos=siyu.settings.identity_max_member_nos_per_value,
        )
        imported[kind] = {"accepted": result.accepted, "rejected": result.rejected}
    context.facts["imported"] = imported
    with siyu.session_factory() as session:
        people = session.scalar(
            sa.select(sa.func.count()).select_from(Member).where(Member.merged_into_id.is_(None))
        )
    context.facts["members"] = people
    rejected = sum(counts["rejected"] for counts in imported.values())
    return (
        f"imported: {imported['members']['accepted']:,} member rows, "
        f"{imported['orders']['accepted']:,} order lines, "
        f"{imported['events']['accepted']:,} events; "
        f"OneID: {people:,} people; {rejected} rows rejected with reasons "
        f"(see {folder}/*.rejected.csv)"
    )


def create_users(context: DemoContext) -> str:
    """The HQ admin, plus a supervisor and a guide bound to real staff rows of the roster."""
    import sqlalchemy as sa

    from siyu.access import service as access_service
    from siyu.access.schemas import Role
    from siyu.staff.models import Staff

    siyu = context.siyu
    with siyu.session_factory() as session:
        guide = session.execute(
            sa.select(Staff.id, Staff.region).where(Staff.role == "guide").order_by(Staff.id)
        ).first()
    created = []
    for username, password, role in ((*DEMO_ADMIN, "hq"), *DEMO_USERS):
        staff_id = guide.id if guide is not None and role == "guide" else None
        region = guide.region if guide is not None and role in ("guide", "supervisor") else None
        access_service.create_user(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            username=username,
            password=password,
            role=Role(role),
            staff_id=staff_id,
            region=region,
            actor="demo",
        )
        created.append(f"{username} ({role})")
    return f"console users: {', '.join(created)}"


DEMO_TAG_GROUPS: tuple[tuple[str, bool], ...] = (
    ("taste", False),
    ("value", True),
    ("service", False),
)
DEMO_RULE_TAGS: tuple[tuple[str, dict[str, object]], ...] = (
    (
        "taste:milk-tea-lover",
        {
            "event": "order_paid",
            "within_days": 180,
            "where": [{"prop": "category", "op": "in", "value": ["drinks"]}],
            "count": {"op": "gte", "value": 3},
        },
    ),
    (
        "value:big-spender",
        {"event": "order_paid", "within_days": 365, "sum": "amount", "op": "gte", "value": 300},
    ),
    ("value:churn-risk", {"lifecycle": "in", "value": ["silent"]}),
)
DEMO_MANUAL_TAGS = ("service:vip-care", "taste:less-sugar")


def define_tags(context: DemoContext) -> str:
    """Tag groups, three rule tags (recomputed now) and two manual tags a guide would set."""
    import sqlalchemy as sa

    from siyu.identity.models import Member
    from siyu.tags import service as tags_service

    siyu = context.siyu
    for name, exclusive in DEMO_TAG_GROUPS:
        tags_service.create_group(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            name=name,
            exclusive=exclusive,
            actor="demo",
        )
    for tag, rule in DEMO_RULE_TAGS:
        tags_service.define_tag(
            session_factory=siyu.session_factory, clock=siyu.clock, tag=tag, rule=rule, actor="demo"
        )
    for tag in DEMO_MANUAL_TAGS:
        tags_service.define_tag(
            session_factory=siyu.session_factory, clock=siyu.clock, tag=tag, actor="demo"
        )
    with siyu.session_factory() as session:
        some = session.scalars(
            sa.select(Member.id)
            .where(Member.merged_into_id.is_(None))
            .order_by(Member.id)
            .limit(40)
        ).all()
    for index, member_id in enumerate(some):
        tags_service.tag_member(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            member_id=member_id,
            tag=DEMO_MANUAL_TAGS[index % 2],
            actor="guide:demo",
        )
    result = tags_service.recompute_rule_tags(
        session_factory=siyu.session_factory,
        warehouse=siyu.warehouse,
        clock=siyu.clock,
        tz=siyu.settings.tz,
    )
    counts = {outcome.tag: outcome.members for outcome in result.tags}
    context.facts["rule_tags"] = counts
    return "tags: " + ", ".join(f"{tag} {count:,}" for tag, count in counts.items())


def refresh_profiles(context: DemoContext) -> str:
    from siyu.profiles.service import refresh_profiles as refresh

    result = refresh(warehouse=context.siyu.warehouse, full=True)
    return f"profiles: {result}"


def sync_warehouse(context: DemoContext) -> str:
    from siyu.warehouse.sync import sync_all

    siyu = context.siyu
    result = sync_all(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz
    )
    return f"warehouse: {result.order_lines:,} order lines, {result.members:,} members synced"


DEMO_TIERS = {
    "levels": [
        {"code": "leaf", "name": "Leaf 茶叶", "threshold": 0},
        {
            "code": "bud",
            "name": "Bud 茶芽",
            "threshold": 300,
            "multiplier": "1.5",
            "member_day_weekday": 3,
            "member_day_multiplier": 2,
        },
        {"code": "blossom", "name": "Blossom 茶花", "threshold": 1000, "multiplier": 2},
    ]
}


DEMO_SEGMENTS: tuple[tuple[str, str, dict[str, object]], ...] = (
    (
        "高价值女性",
        "Women who spent more than ¥500 in the last year",
        {
            "all": [
                {"attr": "gender", "op": "eq", "value": "F"},
                {
                    "event": "order_paid",
                    "within_days": 365,
                    "sum": "amount",
                    "op": "gt",
                    "value": 500,
                },
            ]
        },
    ),
    (
        "沉睡客",
        "Silent members (last order 90–365 days ago)",
        {"lifecycle": "in", "value": ["silent"]},
    ),
    (
        "奶茶常客-非沉睡",
        "Milk-tea lovers who are not silent: nested segment and a tag",
        {"all": [{"tag": "taste:milk-tea-lover", "op": "has"}, {"not": {"segment": "沉睡客"}}]},
    ),
)
SNAPSHOT_WEEKS = 4  # weekly snapshots back in time, so the count history and diffs have a shape


def save_segments(context: DemoContext) -> str:
    """Three saved segments (one nested), snapshotted weekly over the last month and today."""
    from siyu.db import transaction
    from siyu.segments import service as segments_service
    from siyu.segments.refresh import refresh_segment
    from siyu.segments.schemas import Schedule

    siyu = context.siyu
    with transaction(siyu.session_factory) as session:
        for name, description, definition in DEMO_SEGMENTS:
            segments_service.save_segment(
                db_session=session,
                name=name,
                definition=definition,
                now=context.now,
                owner="demo",
                description=description,
                schedule=Schedule.DAILY,
            )
    counts: dict[str, int] = {}
    for weeks_ago in range(SNAPSHOT_WEEKS, -1, -1):
        at = context.now - timedelta(weeks=weeks_ago)
        for name, _, _ in DEMO_SEGMENTS:
            result = refresh_segment(
                session_factory=siyu.session_factory,
                warehouse=siyu.segment_warehouse,
                name=name,
                now=at,
                force=True,
                timezone=siyu.settings.tz,
            )
            counts[name] = result.member_count
    context.facts["segments"] = counts
    return "segments: " + ", ".join(f"{name} {count:,}" for name, count in counts.items())


def wecom_channel(context: DemoContext) -> str:
    """Channel codes (活码) for real guides, customers scanning them through the real callback
    endpoint and worker (on the simulated WeCom), a group, confirmed staff sends."""
    from siyu.channels.wecom import demo as wecom_demo

    return wecom_demo.populate(context.siyu, now=context.now)


def staff_and_attribution(context: DemoContext) -> str:
    """Owner guide and store for every member, guide tasks, a store PK contest, an API key."""
    from siyu.staff import demo as staff_demo

    return staff_demo.populate(context.siyu, now=context.now)


def set_up_points(context: DemoContext) -> str:
    """A three-level tier programme and a "5 teas, 1 free" stamp card; the worker stage then
    earns points for the imported order history and places members in tiers."""
    from siyu.loyalty import points_service
    from siyu.loyalty.stamps import StampCardSpec

    factory = context.siyu.session_factory
    points_service.save_tier_rules(factory, data=DEMO_TIERS, now=context.now)
    points_service.create_stamp_card(
        factory,
        spec=StampCardSpec(
            code="TEA5",
            name="5 teas, 1 free",
            stamps_required=5,
            min_order_yuan=15,
            category="drinks",
            reward_points=200,
        ),
        now=context.now,
    )
    return "points: tiers leaf / bud (≥ ¥300, ×1.5) / blossom (≥ ¥1,000, ×2), stamp card TEA5"


def tagged_member_ids(context: DemoContext, tag: str) -> list[int]:
    import sqlalchemy as sa

    from siyu.tags.models import MemberTag, Tag, TagGroup

    group, name = tag.split(":", 1)
    with context.siyu.session_factory() as session:
        found = session.scalars(
            sa.select(MemberTag.member_id)
            .join(Tag, Tag.id == MemberTag.tag_id)
            .join(TagGroup, TagGroup.id == Tag.group_id)
            .where(TagGroup.name == group, Tag.name == name)
            .order_by(MemberTag.member_id)
        ).all()
    return list(found)


def set_up_coupons(context: DemoContext) -> str:
    """One template of each kind and the new-member pack; 满100减20 issued to the big spenders
    with a 10% holdout; a few of them redeem it at the counter, one order is then refunded."""
    from siyu.db import transaction
    from siyu.loyalty import redemption
    from siyu.loyalty.coupons import Cart, CartLine
    from siyu.loyalty.demo_offers import install_demo_offers

    siyu = context.siyu
    big_spenders = tagged_member_ids(context, "value:big-spender")
    report = install_demo_offers(
        siyu.session_factory, member_ids=big_spenders, now=context.now, tz=siyu.settings.tz
    )
    redeemed = 0
    first_order: str | None = None
    cart = Cart(
        store_code="SH001",
        channel="pos",
        lines=[CartLine(sku="DRK-FRUITTEA-L", category="drinks", amount_fen=12_800)],
    )
    for index, member_id in enumerate(big_spenders[:8]):
        with transaction(siyu.session_factory) as session:
            best = _usable_coupon_ids(session, member_id, cart, context)
            if not best:  # held out, or the coupon is not valid yet
                continue
            done = redemption.redeem_coupons(
                session,
                member_id=member_id,
                order_no=f"DEMO-POS-{index:04d}",
                cart=cart,
                now=context.now,
                tz=siyu.settings.tz,
                coupon_ids=best,
            )
            redeemed += len(done)
            if done and first_order is None:
                first_order = f"DEMO-POS-{index:04d}"
    given_back = 0
    if first_order is not None:
        with transaction(siyu.session_factory) as session:
            given_back = len(
                redemption.reverse_redemptions(
                    session, order_no=first_order, refund_no="DEMO-REFUND-1", now=context.now
                )
            )
    context.facts["coupons"] = {"issued": report.issued, "redeemed": redeemed}
    return (
        f"coupons: 6 templates + NEW_MEMBER pack; TEA_100_20 issued to {report.issued} big "
        f"spenders ({report.held_out} held out); {redeemed} redeemed at SH001, "
        f"{given_back} given back after a refund"
    )


def _usable_coupon_ids(
    session: Session, member_id: int, cart: Cart, context: DemoContext
) -> list[int]:
    """The member's best coupon for the cart (one, as a counter clerk would apply it)."""
    from siyu.loyalty import redemption

    usable = redemption.usable_coupons(
        session, member_id=member_id, cart=cart, now=context.now, tz=context.siyu.settings.tz
    )
    return [quote.coupon_id for quote in usable[:1]]


JOURNEY_DAYS = 10  # journeys went live this many days ago; the worker catches up day by day


def apply_journeys(context: DemoContext) -> str:
    """Delivery policy as data (a cross-channel cap, SMS quiet hours) and the four shipped
    journeys, published `JOURNEY_DAYS` ago so the worker has days of steps to show."""
    from siyu.channels import journey_runtime
    from siyu.db import transaction
    from siyu.delivery import service as delivery_service
    from siyu.delivery.models import QuietRule
    from siyu.journeys import service, templates

    live_since = context.now - timedelta(days=JOURNEY_DAYS)
    runtime = journey_runtime(context.siyu)
    applied = []
    with transaction(context.siyu.session_factory) as session:
        delivery_service.set_frequency_cap(
            db_session=session,
            channel="*",
            max_messages=4,
            window_hours=720,
            label="4 per 30 days, all channels",
        )
        delivery_service.set_quiet_hours(
            db_session=session, channel="sms", start="21:00", end="09:00", rule=QuietRule.HOLD
        )
        for name in templates.names():
            service.apply_definition(
                db_session=session,
                now=live_since,
                text=templates.read(name),
                actions=runtime.actions,
                actor="demo",
            )
            applied.append(name)
    context.facts["journeys"] = applied
    context.facts["journeys_live_since"] = live_since.isoformat()
    return f"journeys: {', '.join(applied)}; cap 4/30 days on every channel, SMS quiet 21:00–09:00"


def run_worker(context: DemoContext) -> str:
    """One worker pass per simulated day since the journeys went live, as `siyu worker --once
    --now …` would do, so step counts, holds, caps and conversions have history."""
    from siyu.channels import build_channels, journey_runtime
    from siyu.channels.base import ChannelSettings
    from siyu.journeys.worker import run_once

    runtime = journey_runtime(context.siyu)
    channels = build_channels(ChannelSettings(), utc_now=context.siyu.clock.now)
    enrolled = steps = 0
    deliveries: dict[str, int] = {}
    for days_ago in range(JOURNEY_DAYS, -1, -1):
        report = run_once(
            runtime=runtime, channels=channels, now=context.now - timedelta(days=days_ago)
        )
        enrolled += report.enrolled
        steps += report.steps
        for outcome, count in (report.deliveries or {}).items():
            deliveries[outcome] = deliveries.get(outcome, 0) + count
    context.facts["worker"] = {"enrolled": enrolled, "steps": steps, "deliveries": deliveries}
    return (
        f"worker: {JOURNEY_DAYS + 1} daily passes, {enrolled} enrolled, {steps} steps, "
        f"deliveries {deliveries}"
    )


STAGES: tuple[DemoStage, ...] = (
    DemoStage("generate", generate_brand),
    DemoStage("import", import_brand),
    DemoStage("users", create_users),
    DemoStage("wecom", wecom_channel),
    DemoStage("warehouse", sync_warehouse),
    DemoStage("staff", staff_and_attribution),
    DemoStage("tags", define_tags),
    DemoStage("profiles", refresh_profiles),
    DemoStage("segments", save_segments),
    DemoStage("points", set_up_points),
    DemoStage("coupons", set_up_coupons),
    DemoStage("journeys", apply_journeys),
    DemoStage("worker", run_worker),
)
