"""WeCom error codes: the ones siyu raises itself and the platform errcodes it reacts to."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class WeComErrorCode(StrEnum):
    INVALID_SIGNATURE = "wecom.invalid_signature"
    INVALID_AES_KEY = "wecom.invalid_aes_key"
    DECRYPT_FAILED = "wecom.decrypt_failed"
    INVALID_RECEIVER = "wecom.invalid_receiver"
    MALFORMED_MESSAGE = "wecom.malformed_message"
    NOT_CONFIGURED = "wecom.not_configured"
    API_ERROR = "wecom.api_error"
    STATE_TOO_LONG = "wecom.state_too_long"
    UNKNOWN_CODE = "wecom.unknown_code"
    UNKNOWN_GUIDE = "wecom.unknown_guide"
    CAP_REACHED = "wecom.cap_reached"


class PlatformErrcode(IntEnum):
    """errcodes of the WeCom API that decide the retry policy (official global error codes)."""

    BUSY = -1
    INVALID_ACCESS_TOKEN = 40014
    MISSING_ACCESS_TOKEN = 41001
    ACCESS_TOKEN_EXPIRED = 42001
    API_FREQ_OUT_OF_LIMIT = 45009
    API_CONCURRENT_OUT_OF_LIMIT = 45033


TOKEN_ERRCODES = frozenset(
    {
        PlatformErrcode.INVALID_ACCESS_TOKEN,
        PlatformErrcode.MISSING_ACCESS_TOKEN,
        PlatformErrcode.ACCESS_TOKEN_EXPIRED,
    }
)
BACKOFF_ERRCODES = frozenset(
    {
        PlatformErrcode.BUSY,
        PlatformErrcode.API_FREQ_OUT_OF_LIMIT,
        PlatformErrcode.API_CONCURRENT_OUT_OF_LIMIT,
    }
)


class WeComCryptoError(Exception):
    """A callback that fails verification or decryption; it must be refused, never processed."""

    def __init__(self, code: WeComErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class WeComError(Exception):
    """A failed WeCom API call; `permanent` when retrying cannot help."""

    def __init__(self, *, api: str, errcode: int, errmsg: str, permanent: bool) -> None:
        super().__init__(f"WeCom {api} failed: errcode={errcode} errmsg={errmsg}")
        self.api = api
        self.errcode = errcode
        self.errmsg = errmsg
        self.permanent = permanent


class WeComDomainError(Exception):
    """A refused WeCom-side operation of siyu (unknown code, state too long, cap reached …)."""

    def __init__(self, code: WeComErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
