"""Console pages of journeys: the list, a journey's per-step counts and holdout comparison, and
the editor (a structured form and a YAML view of the same definition).

Decisions where the issue is silent:
- Everyone signed in may look; only HQ may publish, pause or resume (a journey messages the
  whole brand's members).
- The structured form covers the journey's own fields and the trigger field by field; each
  step is a row (id, type) with the rest of the step as a small YAML mapping, because step
  types differ in shape (a wait has a duration, a branch a DSL condition). Saving the form or
  the YAML goes through the same `apply_definition`, so both validate identically and an
  unchanged definition publishes no new version; errors re-show the editor with the message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from siyu.access.schemas import Role
from siyu.api.deps import SiyuDep
from siyu.channels import journey_runtime
from siyu.console.auth import CsrfChecked, CurrentUser, require_role
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.db import transaction
from siyu.journeys import service as journey_service
from siyu.journeys import stats as journey_stats
from siyu.journeys import templates as shipped
from siyu.journeys.errors import JourneyError, JourneyErrorCode
from siyu.journeys.schemas import HoldoutComparison, MessagePreview

router = APIRouter(prefix="/console/journeys")
nav = [NavEntry(section="Journeys", label="Journeys", path="/console/journeys", order=0)]
Publisher = require_role(Role.HQ)

TRIGGER_TYPES = ("event", "segment_entry", "segment_exit", "date_attribute", "schedule")
STEP_TYPES = ("wait", "wait_until", "wait_event", "branch", "split", "action", "exit")
TRIGGER_FIELDS = {
    "event": ("event",),
    "segment_entry": ("segment",),
    "segment_exit": ("segment",),
    "date_attribute": ("attribute", "offset_days", "at"),
    "schedule": ("every", "start", "audience"),
}
BLANK_STEP_ROWS = 2


# ---------------------------------------------------------------- form <-> definition


def form_from_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The editor's field values for a definition (as stored, i.e. canonical JSON)."""
    trigger = dict(definition.get("trigger") or {"type": "event"})
    goal = definition.get("goal") or {}
    steps = []
    for step in definition.get("steps") or []:
        rest = {k: v for k, v in step.items() if k not in ("id", "type") and v is not None}
        steps.append({"id": step["id"], "type": step["type"], "spec": _yaml(rest) if rest else ""})
    return {
        "name": definition.get("name", ""),
        "title": definition.get("title", ""),
        "description": definition.get("description", ""),
        "reentry": definition.get("reentry", "never"),
        "holdout_percent": definition.get("holdout_percent", 0),
        "exit_on": ", ".join(definition.get("exit_on") or []),
        "goal_event": goal.get("event", ""),
        "goal_days": _days(goal.get("within")) if goal else "",
        "trigger_type": trigger.get("type", "event"),
        "trigger": {
            key: (_yaml(value) if isinstance(value, dict) else value)
            for key, value in trigger.items()
            if key != "type" and value is not None
        },
        "steps": steps + [{"id": "", "type": "", "spec": ""}] * BLANK_STEP_ROWS,
    }


def definition_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The definition the submitted form describes; shape errors name the field."""
    definition: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "title": form.get("title", "").strip(),
        "description": form.get("description", "").strip(),
        "reentry": form.get("reentry", "never"),
        "holdout_percent": _number(form.get("holdout_percent", "0"), "holdout_percent"),
        "trigger": _trigger(form),
        "steps": _steps(form),
    }
    exit_on = [e.strip() for e in form.get("exit_on", "").split(",") if e.strip()]
    if exit_on:
        definition["exit_on"] = exit_on
    if form.get("goal_event", "").strip():
        days = _number(form.get("goal_days") or "14", "goal_days")
        definition["goal"] = {"event": form["goal_event"].strip(), "within": {"days": days}}
    return definition


def _trigger(form: Mapping[str, str]) -> dict[str, Any]:
    kind = form.get("trigger_type", "event")
    if kind not in TRIGGER_FIELDS:
        raise _invalid(f"trigger type: {kind!r} is not one of {', '.join(TRIGGER_TYPES)}")
    trigger: dict[str, Any] = {"type": kind}
    for key in TRIGGER_FIELDS[kind]:
        raw = form.get(f"trigger_{key}", "").strip()
        if not raw:
            continue
        if key == "audience":
            trigger[key] = _mapping(raw, "trigger audience")
        elif key == "offset_days":
            trigger[key] = int(_number(raw, "trigger offset_days"))
        else:
            trigger[key] = raw
    return trigger


def _steps(form: Mapping[str, str]) -> list[dict[str, Any]]:
    steps = []
    index = 0
    while f"step_{index}_id" in form:
        step_id = form[f"step_{index}_id"].strip()
        if step_id:
            spec = _mapping(form.get(f"step_{index}_spec", ""), f"step {step_id!r}")
            steps.append({"id": step_id, "type": form.get(f"step_{index}_type", ""), **spec})
        index += 1
    return steps


def _mapping(text: str, where: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _invalid(f"{where}: not valid YAML ({error})") from error
    if not isinstance(value, dict):
        raise _invalid(f"{where}: expected a mapping such as `duration: {{days: 1}}`")
    return value


def _number(raw: str, where: str) -> float | int:
    try:
        value = float(raw)
    except ValueError as error:
        raise _invalid(f"{where}: {raw!r} is not a number") from error
    return int(value) if value.is_integer() else value


def _days(within: Mapping[str, Any] | None) -> int | float:
    if not within:
        return 14
    hours = within.get("days", 0) * 24 + within.get("hours", 0) + within.get("minutes", 0) / 60
    days = hours / 24
    return int(days) if float(days).is_integer() else round(days, 2)


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=100).strip()


def _invalid(message: str) -> JourneyError:
    return JourneyError(JourneyErrorCode.INVALID_DEFINITION, message)


# ---------------------------------------------------------------- pages


@router.get("")
def journey_list(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    with transaction(siyu.session_factory) as db:
        journeys = journey_service.get_all(db_session=db)
        rows = [
            (j, journey_stats.journey_stats(db_session=db, name=j.name).enrollments)
            for j in journeys
        ]
    context = {"rows": rows, "templates": shipped.names(), "can_publish": user.role == Role.HQ}
    return render(request, "journeys/list.html", context)


@router.get("/new")
def new_journey(
    request: Request,
    user: CurrentUser,
    template: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    if template is not None and template not in shipped.names():
        raise HTTPException(status_code=404, detail=f"no journey template {template!r}")
    text = shipped.read(template) if template else ""
    definition = yaml.safe_load(text) if text else {"steps": []}
    return _editor(request, definition=definition, text=text, error=None, existing=False)


@router.get("/{name}")
def journey_detail(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    name: str,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    try:
        with transaction(siyu.session_factory) as db:
            journey = journey_service.get_by_name(db_session=db, name=name, version=version)
            stats = journey_stats.journey_stats(db_session=db, name=name, version=version)
    except JourneyError as error:
        raise HTTPException(status_code=404, detail=error.message) from error
    context = {
        "journey": journey,
        "stats": stats,
        "version": version,
        "versions": list(range(journey.current_version, 0, -1)),
        "comparison": _comparison_view(stats.comparison),
        "max_entered": max((s.entered for s in stats.steps), default=0) or 1,
        "can_publish": user.role == Role.HQ,
    }
    return render(request, "journeys/detail.html", context)


@router.get("/{name}/preview")
def preview_journey(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    name: str,
    member_id: Annotated[int | None, Query(ge=1)] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """Every message step rendered for one member (by id), as the worker would; nothing sent."""
    from siyu.channels.base import SandboxedRenderer

    try:
        with transaction(siyu.session_factory) as db:
            journey = journey_service.get_by_name(db_session=db, name=name, version=version)
    except JourneyError as error:
        raise HTTPException(status_code=404, detail=error.message) from error
    previews: list[MessagePreview] = []
    problem = None
    if member_id is not None:
        try:
            with transaction(siyu.session_factory) as db:
                previews = journey_service.preview_journey(
                    db_session=db,
                    now=siyu.clock.now(),
                    tz=siyu.settings.tz,
                    renderer=SandboxedRenderer(),
                    name=name,
                    member_id=member_id,
                    version=version,
                )
        except JourneyError as error:
            problem = error.message
    context = {
        "journey": journey,
        "member_id": member_id,
        "version": version,
        "previews": previews,
        "error": problem,
    }
    return render(request, "journeys/preview.html", context)


@router.get("/{name}/edit")
def edit_journey(request: Request, siyu: SiyuDep, user: CurrentUser, name: str) -> HTMLResponse:
    try:
        with transaction(siyu.session_factory) as db:
            journey = journey_service.get_by_name(db_session=db, name=name)
    except JourneyError as error:
        raise HTTPException(status_code=404, detail=error.message) from error
    text = journey.source_text or _yaml(journey.definition)
    return _editor(request, definition=journey.definition, text=text, error=None, existing=True)


@router.post("/save", dependencies=[CsrfChecked, Publisher])
async def save_journey(request: Request, siyu: SiyuDep, user: CurrentUser) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    mode = form.get("mode", "form")
    try:
        text = form.get("yaml", "") if mode == "yaml" else _yaml(definition_from_form(form))
        runtime = journey_runtime(siyu)
        with transaction(siyu.session_factory) as db:
            result = journey_service.apply_definition(
                db_session=db,
                now=siyu.clock.now(),
                text=text,
                actions=runtime.actions,
                actor=user.username,
            )
    except JourneyError as error:
        definition = _lenient(form, mode)
        return _editor(
            request,
            definition=definition,
            text=form.get("yaml", "") if mode == "yaml" else _yaml(definition),
            error=error.message,
            existing=bool(form.get("existing")),
            status_code=422,
        )
    return RedirectResponse(
        f"/console/journeys/{result.journey.name}?saved={result.outcome}", status_code=303
    )


@router.post("/{name}/pause", dependencies=[CsrfChecked, Publisher])
def pause_journey(siyu: SiyuDep, user: CurrentUser, name: str) -> RedirectResponse:
    return _set_status(siyu, user.username, name, pause=True)


@router.post("/{name}/resume", dependencies=[CsrfChecked, Publisher])
def resume_journey(siyu: SiyuDep, user: CurrentUser, name: str) -> RedirectResponse:
    return _set_status(siyu, user.username, name, pause=False)


def _set_status(siyu: SiyuDep, actor: str, name: str, *, pause: bool) -> RedirectResponse:
    change = journey_service.pause if pause else journey_service.resume
    try:
        with transaction(siyu.session_factory) as db:
            change(db_session=db, now=siyu.clock.now(), name=name, actor=actor)
    except JourneyError as error:
        status = 404 if error.code == JourneyErrorCode.NOT_FOUND else 409
        raise HTTPException(status_code=status, detail=error.message) from error
    return RedirectResponse(f"/console/journeys/{name}", status_code=303)


def _lenient(form: Mapping[str, str], mode: str) -> dict[str, Any]:
    """What the operator typed, as far as it parses, to re-show the editor with the error."""
    try:
        if mode == "yaml":
            parsed = yaml.safe_load(form.get("yaml", ""))
            return parsed if isinstance(parsed, dict) else {"steps": []}
        return definition_from_form(form)
    except (JourneyError, yaml.YAMLError):
        return {"name": form.get("name", ""), "title": form.get("title", ""), "steps": []}


def _editor(
    request: Request,
    *,
    definition: Mapping[str, Any],
    text: str,
    error: str | None,
    existing: bool,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "form": form_from_definition(definition),
        "yaml_text": text,
        "error": error,
        "existing": existing,
        "trigger_types": TRIGGER_TYPES,
        "trigger_fields": TRIGGER_FIELDS,
        "step_types": STEP_TYPES,
        "mode": request.query_params.get("mode", "form"),
    }
    return render(request, "journeys/edit.html", context, status_code=status_code)


def _comparison_view(comparison: HoldoutComparison | None) -> dict[str, Any] | None:
    """Rates in percent and the interval placed on a symmetric axis for the inline SVG."""
    if comparison is None:
        return None
    bound = max(abs(comparison.ci_low), abs(comparison.ci_high), 0.01) * 1.2
    width = 360

    def x(value: float) -> float:
        return round(20 + (value + bound) / (2 * bound) * (width - 40), 1)

    return {
        **dataclasses.asdict(comparison),
        "treatment_rate": comparison.treatment.rate * 100,
        "holdout_rate": comparison.holdout.rate * 100,
        "significant": comparison.significant,
        "width": width,
        "x_low": x(comparison.ci_low),
        "x_high": x(comparison.ci_high),
        "x_uplift": x(comparison.uplift),
        "x_zero": x(0.0),
        "bound_pct": bound * 100,
    }
