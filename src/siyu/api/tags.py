"""HTTP API of tags: groups, tags, a member's tags, manual tagging, rule recompute."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query

from siyu.api.deps import SiyuDep
from siyu.tags import service as tags_service
from siyu.tags.errors import TagError, TagErrorCode
from siyu.tags.schemas import (
    MemberTagView,
    NewTag,
    NewTagGroup,
    RecomputeResult,
    TagAssignment,
    TagChange,
    TagGroupView,
    TagView,
)

router = APIRouter(prefix="/api/tags", tags=["tags"])
# Until API keys land (people & trust), the caller names itself for the audit log.
Actor = Annotated[str, Header(alias="X-Siyu-Actor")]
_STATUS = {
    TagErrorCode.GROUP_NOT_FOUND: 404,
    TagErrorCode.TAG_NOT_FOUND: 404,
    TagErrorCode.MEMBER_NOT_FOUND: 404,
    TagErrorCode.ALREADY_EXISTS: 409,
    TagErrorCode.RULE_TAG_IS_COMPUTED: 409,
}


def _http(error: TagError) -> HTTPException:
    return HTTPException(
        status_code=_STATUS.get(error.code, 422),
        detail={"code": error.code.value, "message": error.message},
    )


@router.get("/groups")
def list_groups(siyu: SiyuDep) -> list[TagGroupView]:
    return tags_service.list_groups(session_factory=siyu.session_factory)


@router.post("/groups", status_code=201)
def create_group(body: NewTagGroup, siyu: SiyuDep, actor: Actor = "api") -> TagGroupView:
    try:
        return tags_service.create_group(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            name=body.name,
            exclusive=body.exclusive,
            actor=actor,
        )
    except TagError as error:
        raise _http(error) from error


@router.get("")
def list_tags(siyu: SiyuDep) -> list[TagView]:
    return tags_service.list_tags(session_factory=siyu.session_factory)


@router.post("", status_code=201)
def define_tag(body: NewTag, siyu: SiyuDep, actor: Actor = "api") -> TagView:
    try:
        return tags_service.define_tag(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            tag=body.tag,
            rule=body.rule,
            actor=actor,
        )
    except TagError as error:
        raise _http(error) from error


@router.post("/recompute")
def recompute(siyu: SiyuDep, tag: Annotated[list[str] | None, Query()] = None) -> RecomputeResult:
    try:
        return tags_service.recompute_rule_tags(
            session_factory=siyu.session_factory,
            warehouse=siyu.warehouse,
            clock=siyu.clock,
            tz=siyu.settings.tz,
            only=tag,
        )
    except TagError as error:
        raise _http(error) from error


@router.get("/members/{member_id}")
def member_tags(member_id: int, siyu: SiyuDep) -> list[MemberTagView]:
    try:
        return tags_service.member_tags(session_factory=siyu.session_factory, member_id=member_id)
    except TagError as error:
        raise _http(error) from error


@router.post("/members/{member_id}")
def tag_member(
    member_id: int, body: TagAssignment, siyu: SiyuDep, actor: Actor = "api"
) -> TagChange:
    try:
        return tags_service.tag_member(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            member_id=member_id,
            tag=body.tag,
            actor=actor,
        )
    except TagError as error:
        raise _http(error) from error


@router.delete("/members/{member_id}/{tag}")
def untag_member(member_id: int, tag: str, siyu: SiyuDep, actor: Actor = "api") -> TagChange:
    try:
        return tags_service.untag_member(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            member_id=member_id,
            tag=tag,
            actor=actor,
        )
    except TagError as error:
        raise _http(error) from error
