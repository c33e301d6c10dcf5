"""Trading accounts (交易账户) and their KYC review: who may trade on the exchange.

One trading account per entity (the national rule: one per entity, several operators; the
operators are the users registered for the entity). An entity applies with its legal
identifier, exchange staff review the application (never their own), and only an approved
account may place orders, report block trades or bid; a market that admits no individuals
(the national and CCER markets today) refuses them even when approved.

Identifiers are checked by their check character before anything is stored: the unified
social credit code of GB 32100-2015 for legal persons, the resident identity number of
GB 11643-1999 for individuals. An individual's number is personal data: only its last four
characters and a digest (the one-account-per-entity key) are kept.

The entity's name is not the applicant's free text: it comes from the entity's KYC record
(`kyc_records`, keyed by the identifier's digest), written at the first application and
binding once a review approves it. An application naming an approved code under another name,
or a legal person's approved name under another code, is refused (ENTITY_NAME_MISMATCH), so a
second applicant cannot borrow a firm's name, and with it that firm's same-name bank account.
The account shows the record's name and the funds desk binds only a bank account in it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import kyc_records, trading_accounts, users
from carbonbook.errors import ConflictError, NotFoundError, PermissionDeniedError
from carbonbook.exchange.errors import ExchangeError, OrderRefusedError
from carbonbook.ledger.service import now_us

if TYPE_CHECKING:
    from collections.abc import Callable

    from carbonbook.exchange.markets import Market

KINDS = ("legal_person", "individual")

# GB 32100-2015: 18 characters over 31 symbols (no I, O, Z, S, V); the last is a check
# character, 31 - (sum of value x weight mod 31), 31 written as 0.
_USCC_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11643-1999: 17 digits and a check character from (sum of digit x weight) mod 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECKS = "10X98765432"


class ApplicationRefusedError(ExchangeError):
    """A trading-account application that cannot be accepted; nothing was stored."""

    def __init__(self, code: str, message: str, message_zh: str) -> None:
        super().__init__(message, message_zh)
        self.code = code  # type: ignore[misc]


def credit_code_check(body: str) -> str:
    """The check character of the first 17 characters of a unified social credit code."""
    total = sum(_USCC_SYMBOLS.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return _USCC_SYMBOLS[(31 - total % 31) % 31]


def is_credit_code(text: str) -> bool:
    """Whether `text` is a unified social credit code with a correct check character."""
    if len(text) != 18 or any(c not in _USCC_SYMBOLS for c in text):
        return False
    return credit_code_check(text[:17]) == text[17]


def is_resident_id(text: str) -> bool:
    """Whether `text` is an 18-character resident identity number with a correct check."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(text, _ID_WEIGHTS, strict=False))
    return _ID_CHECKS[total % 11] == text[17]


@dataclass(frozen=True, slots=True)
class TradingAccount:
    id: int
    owner: str
    kind: str
    entity_name: str
    identifier: str  # the credit code, or an individual's number masked to its last four
    state: str
    reason: str | None
    applied_by: str
    applied_at: int
    reviewed_by: str | None
    reviewed_at: int | None

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "kind": self.kind,
            "entity_name": self.entity_name,
            "identifier": self.identifier,
            "state": self.state,
            "reason": self.reason,
            "applied_by": self.applied_by,
            "applied_at_us": self.applied_at,
            "reviewed_by": self.reviewed_by,
            "reviewed_at_us": self.reviewed_at,
        }


class Members:
    """Applications, reviews and the admission check the exchange asks before trading."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], int] = now_us) -> None:
        self.engine = engine
        self.clock = clock

    def apply(
        self, *, owner: str, kind: str, entity_name: str, identifier: str, by: str
    ) -> TradingAccount:
        """File an application (开户申请); a rejected entity may apply again."""
        name = " ".join(entity_name.split())
        code = identifier.strip().upper()
        shown, digest = _identify(kind, code)
        if not name:
            raise ApplicationRefusedError("BAD_NAME", "the entity's name is empty", "主体名称为空")
        with self.engine.begin() as conn:
            if _regulates_or_operates(conn, owner):
                raise ApplicationRefusedError(
                    "ROLE_MAY_NOT_TRADE",
                    "a regulator or the exchange's operator does not trade (separation of duties)",
                    "主管部门和交易所运营人员不得参与交易（职责分离）",
                )
            # The name is the KYC record's (checked first: a firm's code or name under
            # another's application is a name mismatch, whoever holds the account).
            name = _record_name(conn, kind, digest, name, by, self.clock())
            mine = conn.execute(
                sa.select(trading_accounts).where(trading_accounts.c.owner == owner)
            ).first()
            other = conn.execute(
                sa.select(trading_accounts.c.owner).where(
                    trading_accounts.c.identifier_digest == digest
                )
            ).first()
            if other is not None and other.owner != owner:
                raise ApplicationRefusedError(
                    "ACCOUNT_EXISTS",
                    "this identifier already holds a trading account: one per entity",
                    "该证件号码已开立交易账户：每个主体只能开立一个",
                )
            if mine is not None and mine.state != "rejected":
                raise ApplicationRefusedError(
                    "ACCOUNT_EXISTS",
                    f"{owner} already has a trading account ({mine.state})",
                    f"{owner} 已有交易账户（{_STATE_ZH[mine.state]}）",
                )
            values = {
                "kind": kind,
                "entity_name": name,
                "identifier": shown,
                "identifier_digest": digest,
                "state": "applied",
                "reason": None,
                "applied_by": by,
                "applied_at": self.clock(),
                "reviewed_by": None,
                "reviewed_at": None,
            }
            if mine is None:
                account_id = allocate_ids(conn)
                conn.execute(trading_accounts.insert().values(id=account_id, owner=owner, **values))
            else:  # a rejected entity applies again
                account_id = mine.id
                conn.execute(
                    trading_accounts.update()
                    .where(trading_accounts.c.id == account_id)
                    .values(**values)
                )
            auditlog.append(conn, by, "exchange.account.apply", f"trading-account:{account_id}")
            return self._get(conn, account_id)

    def review(
        self, account_id: int, *, approve: bool, reason: str | None, by: str
    ) -> TradingAccount:
        """Approve or reject an application (KYC 审核); a rejection says why."""
        with self.engine.begin() as conn:
            row = self._get(conn, account_id)
            if row.state != "applied":
                raise ConflictError(
                    f"trading account {account_id} is {row.state}, not awaiting review",
                    f"交易账户 {account_id} 当前为{_STATE_ZH[row.state]}，不在待审核状态",
                )
            # Someone other than the applicant: not the applying user, nor anyone else acting
            # for the same entity (a colleague of the applicant is not independent).
            if row.applied_by == by or _owner_of(conn, by) == row.owner:
                raise PermissionDeniedError(
                    "an application is reviewed by someone other than its applicant",
                    "申请须由申请人以外的人员审核",
                )
            text = " ".join((reason or "").split())
            if not approve and not text:
                raise ApplicationRefusedError(
                    "REASON_REQUIRED", "a rejection needs a reason", "驳回须说明理由"
                )
            state = "approved" if approve else "rejected"
            if approve:
                _approve_record(conn, row.owner, by, self.clock())
            conn.execute(
                trading_accounts.update()
                .where(trading_accounts.c.id == account_id)
                .values(state=state, reason=text or None, reviewed_by=by, reviewed_at=self.clock())
            )
            auditlog.append(
                conn,
                by,
                "exchange.account." + ("approve" if approve else "reject"),
                f"trading-account:{account_id}",
                {"reason": text} if text else None,
            )
            return self._get(conn, account_id)

    def account_of(self, owner: str) -> TradingAccount | None:
        with self.engine.connect() as conn:
            row = conn.execute(_ACCOUNTS.where(trading_accounts.c.owner == owner)).first()
            return None if row is None else _account(row)

    def account(self, account_id: int) -> TradingAccount:
        with self.engine.connect() as conn:
            return self._get(conn, account_id)

    def applications(
        self, state: str | None = "applied", *, limit: int = 100
    ) -> list[TradingAccount]:
        query = _ACCOUNTS.order_by(trading_accounts.c.id).limit(limit)
        if state is not None:
            query = query.where(trading_accounts.c.state == state)
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(query)]

    def admit(self, conn: sa.Connection, owner: str, rules: Market) -> None:
        """The exchange's gate before an order, block report or bid (in its transaction)."""
        row = conn.execute(
            sa.select(trading_accounts.c.state, trading_accounts.c.kind).where(
                trading_accounts.c.owner == owner
            )
        ).first()
        # A regulator's or operator's owner never gets an account (`apply` refuses it), and
        # their roles lack the trading permission: this hot path reads nothing more.
        if row is None or row.state != "approved":
            state = "none" if row is None else row.state
            raise OrderRefusedError(
                "NO_TRADING_ACCOUNT",
                f"{owner} has no approved trading account (application: {state})",
                f"{owner} 没有已开通的交易账户（申请状态：{_STATE_ZH.get(state, '未申请')}）",
            )
        if row.kind == "individual" and not rules.individuals:
            raise OrderRefusedError(
                "INDIVIDUALS_NOT_ADMITTED",
                f"the {rules.id} market does not admit individuals yet",
                f"{rules.id} 市场暂不接受个人参与交易",
            )

    @staticmethod
    def _get(conn: sa.Connection, account_id: int) -> TradingAccount:
        row = conn.execute(_ACCOUNTS.where(trading_accounts.c.id == account_id)).first()
        if row is None:
            raise NotFoundError(f"no trading account {account_id}", f"交易账户 {account_id} 不存在")
        return _account(row)


# Separation of duties: whoever acts for a regulator or for the exchange itself never trades.
NON_TRADING_ROLES = ("regulator", "operator")


def _owner_of(conn: sa.Connection, username: str) -> str | None:
    return conn.execute(sa.select(users.c.owner).where(users.c.username == username)).scalar()


def _regulates_or_operates(conn: sa.Connection, owner: str) -> bool:
    """Whether a regulator or the exchange's operator acts for `owner`."""
    found = conn.execute(
        sa.select(users.c.id)
        .where(users.c.owner == owner, users.c.role.in_(NON_TRADING_ROLES))
        .limit(1)
    ).first()
    return found is not None


_STATE_ZH = {"applied": "待审核", "approved": "已开通", "rejected": "已驳回", "none": "未申请"}


def _identify(kind: str, code: str) -> tuple[str, str]:
    """(what is shown, the uniqueness digest) of a valid identifier; refuses an invalid one."""
    if kind == "legal_person":
        if not is_credit_code(code):
            raise ApplicationRefusedError(
                "BAD_CREDIT_CODE",
                "not a unified social credit code (18 characters with a valid check character)",
                "统一社会信用代码无效（应为 18 位且校验位正确）",
            )
        shown = code
    elif kind == "individual":
        if not is_resident_id(code):
            raise ApplicationRefusedError(
                "BAD_ID_NUMBER",
                "not a resident identity number (18 characters with a valid check character)",
                "居民身份证号码无效（应为 18 位且校验位正确）",
            )
        shown = "*" * 14 + code[14:]
    else:
        raise ApplicationRefusedError(
            "BAD_KIND", f"kind is one of {', '.join(KINDS)}", "主体类型应为法人或个人"
        )
    # A uniqueness key, not a secret: the same entity cannot open a second account.
    digest = hashlib.sha256(f"carbonbook-kyc\x1f{kind}\x1f{code}".encode()).hexdigest()
    return shown, digest


# An account with the name of its entity's KYC record (the name shown and bound to a bank).
_ACCOUNTS = sa.select(trading_accounts, kyc_records.c.entity_name.label("kyc_name")).select_from(
    trading_accounts.outerjoin(
        kyc_records, kyc_records.c.identifier_digest == trading_accounts.c.identifier_digest
    )
)


def _record_name(conn: sa.Connection, kind: str, digest: str, name: str, by: str, at: int) -> str:
    """The entity's name from its KYC record: an approved record's name must be the one
    given; a legal person's name approved under another code is not this one's. A record not
    yet approved (a first or rejected application) takes the name given, for review."""
    record = conn.execute(
        sa.select(kyc_records.c.entity_name, kyc_records.c.state).where(
            kyc_records.c.identifier_digest == digest
        )
    ).first()
    if record is not None and record.state == "approved":
        if record.entity_name != name:
            raise ApplicationRefusedError(
                "ENTITY_NAME_MISMATCH",
                f"this identifier is on record as {record.entity_name!r}, not {name!r}",
                f"该证件号码登记的主体名称为“{record.entity_name}”，与“{name}”不符",
            )
        return str(record.entity_name)
    _check_name_free(conn, kind, digest, name)
    if record is None:
        conn.execute(
            kyc_records.insert().values(
                identifier_digest=digest,
                kind=kind,
                entity_name=name,
                state="applied",
                recorded_by=by,
                recorded_at=at,
            )
        )
    else:
        conn.execute(
            kyc_records.update()
            .where(kyc_records.c.identifier_digest == digest)
            .values(entity_name=name, recorded_by=by, recorded_at=at)
        )
    return name


def _check_name_free(conn: sa.Connection, kind: str, digest: str, name: str) -> None:
    """A legal person's registered name is its own (企业名称): refused when approved under
    another code. Individuals share names, so theirs are not checked."""
    if kind != "legal_person":
        return
    taken = conn.execute(
        sa.select(kyc_records.c.identifier_digest)
        .where(
            kyc_records.c.entity_name == name,
            kyc_records.c.kind == "legal_person",
            kyc_records.c.state == "approved",
            kyc_records.c.identifier_digest != digest,
        )
        .limit(1)
    ).first()
    if taken is not None:
        raise ApplicationRefusedError(
            "ENTITY_NAME_MISMATCH",
            f"{name!r} is on record under another credit code",
            f"“{name}”已登记在另一统一社会信用代码下",
        )


def _approve_record(conn: sa.Connection, owner: str, by: str, at: int) -> None:
    """The review approves the name on the entity's KYC record: from now on it is binding."""
    row = conn.execute(
        sa.select(
            trading_accounts.c.identifier_digest,
            kyc_records.c.kind,
            kyc_records.c.entity_name,
            kyc_records.c.state,
        )
        .select_from(
            trading_accounts.join(
                kyc_records,
                kyc_records.c.identifier_digest == trading_accounts.c.identifier_digest,
            )
        )
        .where(trading_accounts.c.owner == owner)
    ).first()
    if row is None or row.state == "approved":
        return
    # Two applications under one name may wait at once: only the first approved keeps it.
    _check_name_free(conn, str(row.kind), str(row.identifier_digest), str(row.entity_name))
    conn.execute(
        kyc_records.update()
        .where(kyc_records.c.identifier_digest == row.identifier_digest)
        .values(state="approved", approved_by=by, approved_at=at)
    )


def _account(row: Any) -> TradingAccount:
    return TradingAccount(
        row.id,
        row.owner,
        row.kind,
        row.kyc_name or row.entity_name,
        row.identifier,
        row.state,
        row.reason,
        row.applied_by,
        row.applied_at,
        row.reviewed_by,
        row.reviewed_at,
    )
