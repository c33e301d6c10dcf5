"""One error shape for every 4xx: {"code", "message", "message_zh"} (fava's json_api.py idea)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from carbonbook.api.limits import BodyTooLargeError, too_large
from carbonbook.errors import DomainError

if TYPE_CHECKING:
    from fastapi import FastAPI

_HTTP_CODES = {
    400: ("BAD_REQUEST", "Bad request", "请求有误"),
    401: ("UNAUTHENTICATED", "Log in or send a valid API token", "请登录或提供有效的 API 令牌"),
    403: ("FORBIDDEN", "Your role may not do this", "您的角色无权执行此操作"),
    404: ("NOT_FOUND", "Not found", "未找到"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed", "不支持该请求方法"),
    409: ("CONFLICT", "Conflict", "请求冲突"),
    413: ("TOO_LARGE", "Request too large", "请求过大"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type", "不支持的媒体类型"),
    429: ("RATE_LIMITED", "Too many requests: slow down", "请求过于频繁，请稍后再试"),
}


def error_body(code: str, message: str, message_zh: str, **extra: object) -> dict[str, object]:
    return {"code": code, "message": message, "message_zh": message_zh, **extra}


class ApiError(DomainError):
    """An HTTP-level refusal raised by the API layer itself (auth, rate limits)."""

    def __init__(self, status: int, code: str, message: str, message_zh: str) -> None:
        super().__init__(message, message_zh)
        self.status = status
        self.api_code = code

    def to_dict(self) -> dict[str, object]:
        return error_body(self.api_code, self.message, self.message_zh)


def install(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "60"} if exc.status == 429 else None
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(BodyTooLargeError)
    async def _body_too_large(_: Request, exc: BodyTooLargeError) -> JSONResponse:
        return too_large(exc.limit)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
            for err in exc.errors()
        ]
        where = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        return JSONResponse(
            error_body(
                "VALIDATION_FAILED",
                f"the request is not valid: {where}",
                f"请求格式不正确：{where}",
                problems=problems,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message, message_zh = _HTTP_CODES.get(
            exc.status_code, ("HTTP_ERROR", str(exc.detail), str(exc.detail))
        )
        if isinstance(exc.detail, str) and exc.detail and exc.status_code not in (404, 405):
            message = exc.detail
        return JSONResponse(
            error_body(code, message, message_zh),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
