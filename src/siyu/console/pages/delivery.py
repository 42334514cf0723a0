"""Console pages of delivery: the outbox (the sandbox channel's "sent" messages are read here)
and every policy decision about a message (sent / held / suppressed / failed / dead, and why).

Decisions where the issue is silent:
- Every signed-in user may read the outbox (operators check what went out); recipients are
  shown masked like everywhere else in the console.
- Nothing here changes a message: re-sending or cancelling is not offered (a decision that must
  be auditable is taken by the policy, not by hand).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from siyu.api.deps import SiyuDep
from siyu.console.auth import CurrentUser
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.db import transaction
from siyu.delivery import service as delivery_service
from siyu.delivery.errors import DeliveryError
from siyu.delivery.models import Decision, OutboxStatus

router = APIRouter(prefix="/console/delivery")
nav = [NavEntry(section="Journeys", label="Outbox", path="/console/delivery", order=10)]
PAGE = 50
CHANNELS = ("sandbox", "sms", "email", "webhook")


@router.get("")
def outbox(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    channel: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    channel, status = channel or None, status or None
    with transaction(siyu.session_factory) as db:
        messages = delivery_service.list_outbox(
            db_session=db,
            channel=channel,
            status=status,
            limit=PAGE + 1,
            offset=(page - 1) * PAGE,
        )
        by_status = delivery_service.count_by_status(db_session=db)
        by_decision = delivery_service.count_decisions(db_session=db)
        recent = delivery_service.list_decisions(db_session=db, limit=20)
    context = {
        "messages": messages[:PAGE],
        "has_next": len(messages) > PAGE,
        "page": page,
        "channel": channel or "",
        "status": status or "",
        "channels": CHANNELS,
        "statuses": [s.value for s in OutboxStatus],
        "by_status": by_status,
        "by_decision": {d.value: by_decision.get(d.value, 0) for d in Decision},
        "recent": recent,
    }
    return render(request, "delivery/outbox.html", context)


@router.get("/{outbox_id}")
def message(request: Request, siyu: SiyuDep, user: CurrentUser, outbox_id: int) -> HTMLResponse:
    try:
        with transaction(siyu.session_factory) as db:
            found = delivery_service.get_message(db_session=db, outbox_id=outbox_id)
            decisions = delivery_service.list_decisions(db_session=db, outbox_id=outbox_id)
    except DeliveryError as error:
        raise HTTPException(status_code=404, detail=error.message) from error
    return render(request, "delivery/message.html", {"message": found, "decisions": decisions})
