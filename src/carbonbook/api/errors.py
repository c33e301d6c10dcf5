"""One error shape for every 4xx: {"code", "message", "message_zh"} (fava's json_api.py idea)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


# pydantic's error types -> a precise code and a Chinese wording for each problem of a 422.
_PROBLEM_CODES: dict[str, tuple[str, str]] = {
    "missing": ("MISSING", "缺失"),
    "int_type": ("NOT_AN_INTEGER", "必须是整数（不接受布尔值、小数或字符串）"),
    "int_parsing": ("NOT_AN_INTEGER", "必须是整数"),
    "int_from_float": ("NOT_AN_INTEGER", "必须是整数"),
    "string_type": ("NOT_A_STRING", "必须是字符串"),
    "bool_type": ("NOT_A_BOOLEAN", "必须是 true 或 false"),
    "bool_parsing": ("NOT_A_BOOLEAN", "必须是 true 或 false"),
    "greater_than": ("OUT_OF_RANGE", "超出允许范围"),
    "greater_than_equal": ("OUT_OF_RANGE", "超出允许范围"),
    "less_than": ("OUT_OF_RANGE", "超出允许范围"),
    "less_than_equal": ("OUT_OF_RANGE", "超出允许范围"),
    "string_too_short": ("BAD_LENGTH", "长度不符合要求"),
    "string_too_long": ("BAD_LENGTH", "长度不符合要求"),
    "too_short": ("BAD_LENGTH", "条目数不符合要求"),
    "too_long": ("BAD_LENGTH", "条目数不符合要求"),
    "string_pattern_mismatch": ("BAD_FORMAT", "格式不正确"),
    "literal_error": ("NOT_ALLOWED", "不是允许的取值"),
    "enum": ("NOT_ALLOWED", "不是允许的取值"),
    "json_invalid": ("BAD_JSON", "不是有效的 JSON"),
    "control_character": ("CONTROL_CHARACTER", "含有控制字符"),
    "business_day": ("BAD_DATE", "日期无效，或不在 2000-01-01 至 2100-12-31 之间"),
    "moment": ("BAD_DATETIME", "须为 2000 至 2100 年间的 ISO 日期时间字符串"),
    "date_type": ("BAD_DATE", "必须是日期"),
    "date_parsing": ("BAD_DATE", "必须是日期"),
    "date_from_datetime_parsing": ("BAD_DATE", "必须是日期"),
    "datetime_type": ("BAD_DATETIME", "必须是日期时间"),
    "datetime_parsing": ("BAD_DATETIME", "必须是日期时间"),
    "datetime_from_date_parsing": ("BAD_DATETIME", "必须是日期时间"),
    "dict_type": ("BAD_TYPE", "必须是对象"),
    "model_type": ("BAD_TYPE", "必须是对象"),
    "model_attributes_type": ("BAD_TYPE", "必须是对象"),
    "list_type": ("BAD_TYPE", "必须是列表"),
    "extra_forbidden": ("UNKNOWN_FIELD", "不是可接受的字段"),
}


def validation_problem(err: Any) -> dict[str, str]:
    """One problem of a 422: where, a precise code, and what is wrong in both languages."""
    code, zh = _PROBLEM_CODES.get(str(err.get("type", "")), ("INVALID", "无效"))
    return {
        "field": ".".join(str(p) for p in err.get("loc", ())),
        "code": code,
        "problem": str(err.get("msg", "")),
        "problem_zh": zh,
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
        problems = [validation_problem(err) for err in exc.errors()]
        where = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        where_zh = "；".join(f"{p['field']}：{p['problem_zh']}" for p in problems[:5])
        return JSONResponse(
            error_body(
                "VALIDATION_FAILED",
                f"the request is not valid: {where}",
                f"请求格式不正确：{where_zh}",
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
