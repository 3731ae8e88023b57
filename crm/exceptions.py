from core.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed


class StaffNotFound(NotFound):
    code = "staff_not_found"
    message = "员工不存在"


class DepartmentNotFound(NotFound):
    code = "department_not_found"
    message = "部门不存在"


class UsernameTaken(Conflict):
    code = "username_taken"
    message = "登录名已被使用"


class WecomUserIdTaken(Conflict):
    code = "wecom_userid_taken"
    message = "该企业微信账号已绑定其他员工"


class InvalidDepartmentTree(ValidationFailed):
    code = "invalid_department_tree"
    message = "部门层级不正确"


class OutOfScope(PermissionDenied):
    """Reaching a record outside one's data scope. Rendered as 404 so existence does not leak."""

    code = "out_of_scope"
    status = 404
    message = "记录不存在或不在您的数据范围内"


class WeakPassword(ValidationFailed):
    code = "weak_password"
    message = "密码至少 10 位，不能是常见密码，也不能包含登录名"


class LoginRefused(AppError):
    code = "login_refused"
    status = 401
    message = "用户名或密码错误"


class CustomerNotFound(NotFound):
    code = "customer_not_found"
    message = "客户不存在或不在您的数据范围内"


class CustomerBlacklisted(Conflict):
    code = "customer_blacklisted"
    message = "该客户已被列入黑名单"


class PoolNotFound(NotFound):
    code = "pool_not_found"
    message = "公海不存在"
