"""The one small base every channel builds on, their settings, and the sandboxed template renderer.

A channel turns an `OutboundMessage` into one provider call and returns the provider's id, or
raises `ChannelFailure` (permanent=True when retrying cannot help, e.g. an invalid number).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic_settings import BaseSettings, SettingsConfigDict

from siyu.delivery.interface import ChannelFailure, OutboundMessage, SendResult
from siyu.journeys.errors import JourneyError, JourneyErrorCode

TEMPLATE_CACHE_SIZE = 512  # distinct template texts kept compiled per renderer

__all__ = [
    "BaseChannel",
    "ChannelFailure",
    "ChannelSettings",
    "OutboundMessage",
    "SandboxedRenderer",
    "SendResult",
]


class ChannelSettings(BaseSettings):
    """Channel credentials from SIYU_* variables; a channel without its settings is not built."""

    model_config = SettingsConfigDict(env_prefix="SIYU_", extra="ignore")

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "Demo Tea <no-reply@demo-tea.example>"

    sms_provider: str = "aliyun"
    sms_access_key_id: str | None = None
    sms_access_key_secret: str | None = None
    sms_sign_name: str | None = None
    sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    sms_region: str = "cn-hangzhou"

    webhook_secret: str | None = None
    http_timeout_seconds: float = 10.0


class BaseChannel(ABC):
    name: str

    @abstractmethod
    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message or raise ChannelFailure."""


def _blank_none(value: object) -> object:
    return "" if value is None else value


class SandboxedRenderer:
    """Jinja2 in its sandbox: templates written by operators cannot reach Python internals.

    Unknown variables are errors (a typo must not send "Dear ," to 100k members); a member
    field that is simply empty renders as an empty string.
    """

    def __init__(self) -> None:
        self._env = SandboxedEnvironment(
            undefined=StrictUndefined, finalize=_blank_none, autoescape=False
        )
        self._cache: dict[str, Template] = {}

    def _compiled(self, template: str) -> Template:
        """Compiling is most of a render's cost and a journey renders one text 100k times."""
        found = self._cache.get(template)
        if found is None:
            if len(self._cache) >= TEMPLATE_CACHE_SIZE:
                self._cache.clear()
            found = self._cache[template] = self._env.from_string(template)
        return found

    def check(self, template: str) -> None:
        try:
            self._env.parse(template)
        except TemplateError as error:
            raise JourneyError(
                JourneyErrorCode.TEMPLATE_ERROR, f"template error: {error}"
            ) from error

    def render(self, template: str, variables: Mapping[str, object]) -> str:
        try:
            return self._compiled(template).render(**variables)
        except TemplateError as error:
            raise JourneyError(
                JourneyErrorCode.TEMPLATE_ERROR, f"template error: {error}"
            ) from error
