"""Imports every domain's tables so Alembic and `create_all` see the whole schema.

Domains never import each other's models; only this composition module does.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from siyu.db import Base

MODEL_MODULES = (
    "siyu.identity.models",
    "siyu.orders.models",
    "siyu.staff.models",
    "siyu.staff.models_guides",
    "siyu.tags.models",
    "siyu.audit.models",
    "siyu.ingest.models",
    "siyu.access.models",
    "siyu.journeys.models",
    "siyu.delivery.models",
    "siyu.segments.models",
    "siyu.loyalty.models",
    "siyu.channels.wecom.models",
    "siyu.growth.models",
    "siyu.loyalty.models_points",
)


def load_all_models() -> MetaData:
    """Import each models module that exists and return the shared metadata."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
