"""Request-scoped dependencies: the composed Siyu and a database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from siyu.bootstrap import Siyu


def get_siyu(request: Request) -> Siyu:
    siyu: Siyu = request.app.state.siyu
    return siyu


def get_session(siyu: Annotated[Siyu, Depends(get_siyu)]) -> Iterator[Session]:
    session = siyu.session_factory()
    try:
        yield session
    finally:
        session.close()


SiyuDep = Annotated[Siyu, Depends(get_siyu)]
SessionDep = Annotated[Session, Depends(get_session)]
