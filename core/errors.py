"""The error hierarchy. Every business refusal is an AppError with a stable code (for programs)
and a Chinese message (for people). Channels render them; domains never raise HTTP errors."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    code = "app_error"
    status = 400
    message = "操作失败"

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any) -> None:
        self.message = message or self.message
        if code:
            self.code = code
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationFailed(AppError):
    code = "validation_failed"
    status = 422
    message = "输入不正确"


class NotFound(AppError):
    code = "not_found"
    status = 404
    message = "记录不存在"


class Conflict(AppError):
    code = "conflict"
    status = 409
    message = "操作冲突，请刷新后重试"


class NotAuthenticated(AppError):
    code = "not_authenticated"
    status = 401
    message = "请先登录"


class PermissionDenied(AppError):
    code = "permission_denied"
    status = 403
    message = "没有权限执行此操作"


class RateLimited(AppError):
    code = "rate_limited"
    status = 429
    message = "操作过于频繁，请稍后再试"


class ExternalServiceError(AppError):
    code = "external_service_error"
    status = 502
    message = "外部服务暂时不可用"


class ServiceUnavailable(AppError):
    """The database (or another service we cannot work without) is unreachable for the moment."""

    code = "service_unavailable"
    status = 503
    message = "服务暂时不可用，请稍后重试"
