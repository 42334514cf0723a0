"""Builds the FastAPI application (API + console) around one composed Siyu."""

from __future__ import annotations

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from siyu import __version__
from siyu.api.deps import SiyuDep
from siyu.bootstrap import Siyu
from siyu.loyalty.errors import LoyaltyError


def create_app(siyu: Siyu) -> FastAPI:
    app = FastAPI(
        title="siyu", version=__version__, docs_url="/api/docs", openapi_url="/api/openapi.json"
    )
    app.state.siyu = siyu

    async def number_out_of_range(request: Request, error: Exception) -> JSONResponse:
        # Ids and amounts are 64-bit in every store; a larger number in a request can never
        # match or be stored, so it is the caller's error (422), not ours (500). SQLite's
        # driver raises OverflowError, PostgreSQL a DataError (bigint out of range).
        return JSONResponse(
            status_code=422,
            content={
                "detail": {
                    "code": "number_out_of_range",
                    "message": "a value in the request is out of range for the store"
                    " (e.g. a number beyond 64 bits)",
                }
            },
        )

    app.add_exception_handler(OverflowError, number_out_of_range)
    app.add_exception_handler(sqlalchemy.exc.DataError, number_out_of_range)

    from siyu.api import journeys  # journeys and delivery (issue #5)

    app.include_router(journeys.router)
    from siyu.api import reports  # the four reports (issue #3)

    app.include_router(reports.router)
    from siyu.api import tags  # tag groups, tags, tagging (issue #3)

    app.include_router(tags.router)
    from siyu.api import members  # members search, 360, orders (issue #2)

    app.include_router(members.router)
    from siyu.api import ingest  # batch ingest of members, orders, events (issue #2)

    app.include_router(ingest.router)
    from siyu.api import loyalty  # coupons: templates, wallet, redemption protocol (issue #7)

    app.include_router(loyalty.router)
    app.add_exception_handler(LoyaltyError, loyalty.loyalty_refused)  # coupons and points
    from siyu.api import wecom  # WeCom callbacks (issue #6)

    app.include_router(wecom.router)
    from siyu.api import points  # points ledger and tiers (issue #7)

    app.include_router(points.router)
    from siyu.api import apikeys  # API keys with scopes, /api authentication (issue #8)

    app.include_router(apikeys.router)
    apikeys.install_api_auth(app, siyu)
    apikeys.install_member_path_guard(app, siyu)  # console member paths by scope (issue #8)
    from siyu.api import privacy, staff, tasks  # people and trust (issue #8)

    app.include_router(staff.router)
    app.include_router(tasks.router)
    app.include_router(privacy.router)
    from siyu.api import segments  # segments: preview, saved, snapshots, export (issue #4)

    app.include_router(segments.router)
    from siyu.console.app import mount_console  # console shell and pages (issue #2)

    mount_console(app, siyu)

    @app.get("/api/health", tags=["system"])
    def health(siyu: SiyuDep) -> dict[str, str]:
        return {"status": "ok", "version": __version__, "now": siyu.clock.now().isoformat()}

    return app
