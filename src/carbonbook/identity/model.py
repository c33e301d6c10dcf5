"""Roles and what each may do. Pure rules; the API asks `allows()` before every action."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PERSON = "person"  # 个人用户: a personal carbon account
    PARTNER = "partner"  # 合作平台: bike sharing, food delivery, logistics, utilities
    ENTERPRISE = "enterprise"  # 控排企业: a key emitter
    VERIFIER = "verifier"  # 核查机构: third-party verifier
    MEMBER = "member"  # 交易会员: an exchange member
    REGULATOR = "regulator"  # 主管部门 / 管理员: regulator and platform administrator
    OPERATOR = "operator"  # 交易所运营: KYC review, auctions, the funds desk


class Permission(StrEnum):
    READ_OWN_ACCOUNTS = "ledger.read_own"
    READ_ALL_ACCOUNTS = "ledger.read_all"
    MANAGE_USERS = "identity.manage"
    SUBMIT_EVENTS = "personal.submit_events"
    READ_AUDIT = "audit.read"
    MANAGE_REWARDS = "personal.manage_rewards"
    REVIEW_CHECKINS = "personal.review_checkins"
    HOLD_UNITS = "registry.hold"  # transfer, surrender and cancel one's own units
    REGULATE_REGISTRY = "registry.regulate"  # issue, freeze, set obligations, see everyone
    FILE_REPORTS = "mrv.file"  # draft, edit and submit one's own emissions reports
    VERIFY_REPORTS = "mrv.verify"  # return or verify submitted reports (third party)
    LOCK_REPORTS = "mrv.lock"  # lock verified reports: they become the compliance figure
    RUN_EXCHANGE = "exchange.operate"  # KYC review, fund recovery, reconciliation (交易所运营)


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.PERSON: frozenset({Permission.READ_OWN_ACCOUNTS}),
    Role.PARTNER: frozenset({Permission.READ_OWN_ACCOUNTS, Permission.SUBMIT_EVENTS}),
    Role.ENTERPRISE: frozenset(
        {Permission.READ_OWN_ACCOUNTS, Permission.HOLD_UNITS, Permission.FILE_REPORTS}
    ),
    Role.VERIFIER: frozenset(
        {Permission.READ_OWN_ACCOUNTS, Permission.REVIEW_CHECKINS, Permission.VERIFY_REPORTS}
    ),
    Role.MEMBER: frozenset({Permission.READ_OWN_ACCOUNTS, Permission.HOLD_UNITS}),
    # Separation of duties (issue 16): a regulator regulates; it never trades, bids, holds
    # units, verifies reports or runs the exchange's desks.
    Role.REGULATOR: frozenset(Permission)
    - {
        Permission.HOLD_UNITS,
        Permission.VERIFY_REPORTS,
        Permission.RUN_EXCHANGE,
        Permission.FILE_REPORTS,
        Permission.SUBMIT_EVENTS,
    },
    # The exchange's operator runs the market: KYC review, auctions, the funds desk. It holds
    # no units and regulates nothing.
    Role.OPERATOR: frozenset(
        {
            Permission.READ_OWN_ACCOUNTS,
            Permission.READ_ALL_ACCOUNTS,
            Permission.READ_AUDIT,
            Permission.RUN_EXCHANGE,
        }
    ),
}


def allows(role: Role, permission: Permission) -> bool:
    """Whether `role` holds `permission`."""
    return permission in _GRANTS[role]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    locale: str
    owner: str  # the ledger owner whose accounts this user sees and acts for

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)
