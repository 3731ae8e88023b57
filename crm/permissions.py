"""Named permissions (权限): the one check behind every role gate, for built-in and custom roles alike.

A :class:`Permission` is the set of built-in roles that hold it (so every existing ``viewer.role in X``
and ``require_roles(X)`` keeps working unchanged) plus a key, a Chinese label and a description. A custom
role (自定义角色, :class:`crm.models.CustomRole`) is a list of permission keys and a data scope; its holder's
``Viewer.role`` is a :class:`RoleName`, a ``str`` that also carries the role's permission keys, so
``role in permission`` is true for a custom role exactly when the role lists the permission. A role-set that is
not a :class:`Permission` (a plain set) never admits a custom role: unnamed checks stay closed.

Permissions register themselves where they are defined (:func:`permission`); the role editor lists
:func:`catalogue`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import ROLE_LABELS, CustomRole, Role

BUILTIN_ROLES: frozenset[str] = frozenset(r.value for r in Role)

# The role editor's groups, in order; a permission names its own.
GROUPS: tuple[str, ...] = ("客户", "工作", "贷款", "财务", "贷后", "企微运营", "报表", "设置")


class Permission(frozenset[str]):
    """The built-in roles holding a permission; ``role in p`` also admits a custom role that lists ``p.key``."""

    key: str
    label: str
    description: str
    group: str
    everyone: bool

    def __new__(cls, key: str, label: str, description: str, roles: Iterable[str], *, group: str = "设置",
                everyone: bool = False) -> Permission:
        obj = super().__new__(cls, (str(r) for r in roles))
        obj.key, obj.label, obj.description, obj.group, obj.everyone = key, label, description, group, everyone
        return obj

    def __contains__(self, role: object) -> bool:
        if frozenset.__contains__(self, role):
            return True
        if isinstance(role, RoleName):
            return self.everyone or self.key in role.permissions
        return False

    def __reduce__(self):  # noqa: ANN204 - pickling keeps the key (registered permissions are module globals)
        return (_registered, (self.key,))

    # A union of two permissions is the roles of either, custom roles included.
    def __or__(self, other: object) -> Permission:  # type: ignore[override]
        if not isinstance(other, Permission):
            return NotImplemented
        return _Union(self, other)


class _Union(Permission):
    def __new__(cls, a: Permission, b: Permission) -> _Union:
        obj = frozenset.__new__(cls, frozenset.union(a, b))
        obj.key, obj.label, obj.description = f"{a.key}|{b.key}", f"{a.label}或{b.label}", ""
        obj.group, obj.everyone, obj._parts = a.group, a.everyone or b.everyone, (a, b)
        return obj

    def __contains__(self, role: object) -> bool:
        return any(role in part for part in self._parts)

    def __reduce__(self):  # noqa: ANN204
        return (_Union, self._parts)


_REGISTRY: dict[str, Permission] = {}


def _registered(key: str) -> Permission:
    return _REGISTRY[key]


def permission(key: str, label: str, description: str, roles: Iterable[str], *, group: str = "设置",
               everyone: bool = False) -> Permission:
    """Define and register a named permission (once per key; the module defining it owns it)."""
    if key in _REGISTRY:
        raise ValueError(f"permission {key!r} is defined twice")
    perm = Permission(key, label, description, roles, group=group, everyone=everyone)
    _REGISTRY[key] = perm
    return perm


def catalogue() -> list[Permission]:
    """Every permission a custom role may hold (not those everyone holds), in the editor's group order."""
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted((p for p in _REGISTRY.values() if not p.everyone),
                  key=lambda p: (order.get(p.group, len(order)), p.key))


def get(key: str) -> Permission | None:
    return _REGISTRY.get(key)


def builtin_permissions(role: str) -> list[Permission]:
    """What a built-in role holds (the preset a custom role may start from)."""
    return [p for p in catalogue() if frozenset.__contains__(p, role)]


class RoleName(str):
    """A custom role's key as ``Viewer.role``: a string that carries the role's name and permission keys."""

    permissions: frozenset[str]
    label: str

    def __new__(cls, key: str, label: str, permissions: Iterable[str]) -> RoleName:
        obj = super().__new__(cls, key)
        obj.label, obj.permissions = label, frozenset(permissions)
        return obj

    def __reduce__(self):  # noqa: ANN204
        return (RoleName, (str(self), self.label, tuple(sorted(self.permissions))))


def role_name(session: Session | None, role: str) -> str:
    """``Staff.role`` as the viewer's role: built-in roles as they are, a custom role as its :class:`RoleName`
    (a role that no longer exists holds nothing)."""
    if role in BUILTIN_ROLES or isinstance(role, RoleName):
        return role
    row = session.scalar(select(CustomRole).where(CustomRole.key == role)) if session is not None else None
    if row is None:
        return RoleName(role, "未知角色", ())
    return RoleName(role, row.name, row.permissions or ())


def role_label(role: str, custom_labels: dict[str, str] | None = None) -> str:
    """A role's Chinese name: the built-in label, a custom role's name."""
    if role in ROLE_LABELS:
        return ROLE_LABELS[role]
    if isinstance(role, RoleName):
        return role.label
    return (custom_labels or {}).get(role, role)


def holder_roles(session: Session, perm: Permission) -> list[str]:
    """Every ``Staff.role`` value that holds ``perm``: its built-in roles and the custom roles listing it
    (for staff pickers: ``Staff.role.in_(holder_roles(session, p))``)."""
    custom = [key for key, perms in session.execute(select(CustomRole.key, CustomRole.permissions))
              if RoleName(key, "", perms or ()) in perm]
    return sorted({*(str(r) for r in frozenset.__iter__(perm)), *custom})


# WeCom operations: the console links to the bot's pages by URL (channels never import each other), so the
# permissions both sides check are defined here, in the domain they share.
WECOM_OPS = permission("wecom.manage", "企微运营", "渠道活码、群机器人、客户群、企微标签同步、企微模拟器",
                       {Role.ADMIN, Role.MANAGER}, group="企微运营")
WECOM_MASS = permission("wecom.mass", "群发", "创建和发送群发消息", {Role.ADMIN, Role.MANAGER, Role.SUPERVISOR},
                        group="企微运营")


def staff_holds(session: Session, staff_role: str, perm: Permission) -> bool:
    """Whether a stored ``Staff.role`` (not a viewer's) holds ``perm``: a custom role is looked up."""
    return role_name(session, staff_role) in perm


@dataclass(frozen=True)
class Preset:
    """A built-in role as the role editor shows it."""

    key: str
    label: str
    data_scope: str
    permissions: list[Permission]
