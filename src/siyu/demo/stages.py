"""The demo's stages. Each uses the public service functions of one domain, as an operator's
script would, so the demo doubles as an end-to-end check that the domains compose."""

from __future__ import annotations

from siyu.demo.build import DemoContext, DemoStage


def sync_warehouse(context: DemoContext) -> str:
    from siyu.warehouse.sync import sync_all

    siyu = context.siyu
    result = sync_all(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz
    )
    return f"warehouse: {result.order_lines:,} order lines, {result.members:,} members synced"


def apply_journeys(context: DemoContext) -> str:
    from siyu.channels import journey_runtime
    from siyu.journeys import service, templates

    runtime = journey_runtime(context.siyu)
    applied = []
    with context.siyu.session_factory() as session:
        for name in templates.names():
            service.apply_definition(
                db_session=session,
                now=context.now,
                text=templates.read(name),
                actions=runtime.actions,
                actor="demo",
            )
            applied.append(name)
        session.commit()
    context.facts["journeys"] = applied
    return f"journeys: {', '.join(applied)}"


def run_worker(context: DemoContext) -> str:
    from siyu.channels import build_channels, journey_runtime
    from siyu.channels.base import ChannelSettings
    from siyu.journeys.worker import run_once

    runtime = journey_runtime(context.siyu)
    channels = build_channels(ChannelSettings(), utc_now=context.siyu.clock.now)
    report = run_once(runtime=runtime, channels=channels, now=context.now)
    return (
        f"worker: {report.enrolled} enrolled, {report.steps} steps, "
        f"deliveries {report.deliveries or {}}"
    )


STAGES: tuple[DemoStage, ...] = (
    DemoStage("warehouse", sync_warehouse),
    DemoStage("journeys", apply_journeys),
    DemoStage("worker", run_worker),
)
