"""Points and rewards (积分兑换): a catalogue with stock and validity, redemption, vouchers, expiry.

Points are ledger value like any other: a redemption is one ledger batch that moves the price
from the person's `POINT` account to the platform's `rewards:redeemed` account, in the same
transaction that takes one item off the shelf and writes the voucher. Either all three happen
or none does; two people racing for the last item cannot both win (the stock decrement is a
conditional UPDATE, so the loser sees zero rows and its whole transaction rolls back).

Expiry is a rule (see `ExpiryRule`): points are spent oldest first, so what is left of the
points earned before the cut-off is `earned_before - everything debited so far`, never below
zero. The expiry transfer carries a key derived from the account and the cut-off day, so a
re-run the same day moves nothing twice.
"""

from __future__ import annotations

import hashlib
import secrets
import tomllib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.schema import accounts, people, redemptions, rewards, transfers
from carbonbook.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from carbonbook.ledger import AccountFlags, Batch, Ledger, TransferKind, TransferRequest

SHANGHAI = ZoneInfo("Asia/Shanghai")
REWARDS_OWNER = "rewards"  # the platform side of every redemption and expiry
# Voucher codes avoid look-alike characters (0/O, 1/I/L) so they can be read out at a counter.
VOUCHER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VOUCHER_LENGTH = 12
EXPIRY_CHUNK = 1000


class RewardError(DomainError):
    code = "REWARD_ERROR"
    http_status = 422


class UnknownRewardError(NotFoundError):
    code = "UNKNOWN_REWARD"


class OutOfStockError(RewardError):
    code = "OUT_OF_STOCK"
    http_status = 409


class RewardNotAvailableError(RewardError):
    code = "REWARD_NOT_AVAILABLE"


class UnknownVoucherError(NotFoundError):
    code = "UNKNOWN_VOUCHER"


class VoucherUsedError(RewardError):
    code = "VOUCHER_USED"
    http_status = 409


class VoucherExpiredError(RewardError):
    code = "VOUCHER_EXPIRED"
    http_status = 409


class BadRewardError(ValidationFailedError):
    code = "BAD_REWARD"


class KeyReusedError(ConflictError):
    code = "KEY_REUSED"


@dataclass(frozen=True, slots=True)
class Reward:
    """One catalogue item: what it costs, how many are left, and when it can be redeemed."""

    id: str
    title_zh: str
    title_en: str
    sponsor: str
    points: int
    stock: int
    valid_from: date  # first and last Asia/Shanghai day it can be redeemed, inclusive
    valid_until: date
    voucher_days: int  # a voucher is good for this many days after redemption

    def available_on(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "sponsor": self.sponsor,
            "points": self.points,
            "stock": self.stock,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "voucher_days": self.voucher_days,
        }


@dataclass(frozen=True, slots=True)
class Redemption:
    id: int
    person: str
    reward: str
    points: int
    voucher: str
    redeemed_at: int
    expires_at: int
    used_at: int | None
    batch_id: int

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "person": self.person,
            "reward": self.reward,
            "points": self.points,
            "voucher": self.voucher,
            "redeemed_at": _iso(self.redeemed_at),
            "expires_at": _iso(self.expires_at),
            "used_at": _iso(self.used_at) if self.used_at is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ExpiryRule:
    """When earned points lapse (积分有效期).

    `calendar_years`: points earned in year Y lapse at the end of year Y + `count` (the usual
    loyalty-programme rule); `days`: points lapse `count` days after the day they were earned.
    """

    kind: Literal["calendar_years", "days"]
    count: int

    def cutoff(self, today: date) -> date:
        """Points credited before this Asia/Shanghai day have lapsed by `today`."""
        if self.kind == "calendar_years":
            return date(today.year - self.count, 1, 1)
        return today - timedelta(days=self.count)


def points_to_expire(earned_before_cutoff: int, debited_so_far: int) -> int:
    """Oldest points are spent first, so only what the debits have not yet consumed lapses."""
    return max(0, earned_before_cutoff - debited_so_far)


def shanghai_day(instant_us: int) -> date:
    return datetime.fromtimestamp(instant_us / 1_000_000, SHANGHAI).date()


def day_start_us(day: date) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    return int(start.timestamp()) * 1_000_000


def _iso(instant_us: int) -> str:
    return datetime.fromtimestamp(instant_us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def new_voucher_code() -> str:
    return "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_LENGTH))


# -- catalogue files ------------------------------------------------------------------------------


def parse_catalogue(text: str, source: str = "catalogue") -> list[Reward]:
    """Rewards from a TOML catalogue (`[[reward]]` tables); every problem names its item."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadRewardError(f"{source}: not TOML: {exc}", f"{source}：不是 TOML：{exc}") from None
    items = document.get("reward")
    if not isinstance(items, list) or not items:
        raise BadRewardError(f"{source}: no [[reward]] items", f"{source}：没有 [[reward]] 条目")
    return [reward_from_mapping(item, f"{source}: reward {n}") for n, item in enumerate(items, 1)]


def reward_from_mapping(item: Any, where: str = "reward") -> Reward:  # noqa: C901
    """Check one catalogue item; the error names the field and the rule it breaks."""
    if not isinstance(item, dict):
        raise BadRewardError(f"{where}: not a table", f"{where}：不是表")

    def text(name: str, limit: int) -> str:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise BadRewardError(
                f"{where}: {name} must be text of 1 to {limit} characters",
                f"{where}：{name} 须为 1 至 {limit} 个字符的文本",
            )
        return value.strip()

    def whole(name: str, low: int) -> int:
        value = item.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**53:
            raise BadRewardError(
                f"{where}: {name} must be a whole number >= {low}",
                f"{where}：{name} 须为不小于 {low} 的整数",
            )
        return value

    def day(name: str) -> date:
        value = item.get(name)
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise BadRewardError(
            f"{where}: {name} must be a date YYYY-MM-DD", f"{where}：{name} 须为日期 YYYY-MM-DD"
        )

    reward_id = text("id", 60)
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in reward_id):
        raise BadRewardError(
            f"{where}: id may hold only ASCII letters, digits, '-' and '_'",
            f"{where}：id 只能包含 ASCII 字母、数字、'-' 和 '_'",
        )
    reward = Reward(
        id=reward_id,
        title_zh=text("title_zh", 200),
        title_en=text("title_en", 200),
        sponsor=text("sponsor", 120),
        points=whole("points", 1),
        stock=whole("stock", 0),
        valid_from=day("valid_from"),
        valid_until=day("valid_until"),
        voucher_days=whole("voucher_days", 1),
    )
    if reward.valid_until < reward.valid_from:
        raise BadRewardError(
            f"{where}: valid_until is before valid_from", f"{where}：valid_until 早于 valid_from"
        )
    return reward


def parse_expiry_rule(item: Any) -> ExpiryRule:
    kind = item.get("kind") if isinstance(item, dict) else None
    count = item.get("count") if isinstance(item, dict) else None
    if kind not in ("calendar_years", "days") or not isinstance(count, int) or count < 0:
        raise BadRewardError(
            "points_expiry must be {kind = 'calendar_years' | 'days', count = N >= 0}",
            "points_expiry 须为 {kind = 'calendar_years' | 'days', count = N >= 0}",
        )
    return ExpiryRule(kind, count)


# -- the service ----------------------------------------------------------------------------------


class Rewards:
    """The catalogue, redemptions and vouchers, and points expiry, over the one ledger."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.ledger = Ledger(engine)

    # catalogue

    def put(self, items: list[Reward], actor: str = "system") -> None:
        """Add rewards or replace their terms; stock is set to the given figure. Audited."""
        with self.engine.begin() as conn:
            for reward in items:
                auditlog.append(
                    conn, actor, "reward.put", f"reward:{reward.id}",
                    {"points": reward.points, "stock": reward.stock},
                )  # fmt: skip
                values = reward.to_document()
                values["valid_from"] = reward.valid_from.isoformat()
                values["valid_until"] = reward.valid_until.isoformat()
                found = conn.execute(
                    sa.select(rewards.c.id).where(rewards.c.id == reward.id)
                ).first()
                if found is None:
                    conn.execute(rewards.insert().values(**values, created_at=_now_us()))
                else:
                    conn.execute(rewards.update().where(rewards.c.id == reward.id).values(values))

    def catalogue(self, *, on: date | None = None) -> list[Reward]:
        """Every reward, or those redeemable on a given day, cheapest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(rewards).order_by(rewards.c.points, rewards.c.id))
            found = [_reward(row) for row in rows]
        return [r for r in found if on is None or r.available_on(on)]

    def reward(self, reward_id: str, conn: sa.Connection | None = None) -> Reward:
        query = sa.select(rewards).where(rewards.c.id == reward_id)
        if conn is None:
            with self.engine.connect() as own:
                row = own.execute(query).first()
        else:
            row = conn.execute(query).first()
        if row is None:
            raise UnknownRewardError(f"no reward {reward_id!r}", f"没有奖励 {reward_id!r}")
        return _reward(row)

    # redemption

    def redeem(
        self,
        person: str,
        reward_id: str,
        key: str,
        *,
        owner: str | None = None,
        now_us: int | None = None,
    ) -> Redemption:
        """Spend the reward's points on one item and issue a voucher, all or nothing.

        `key` is the client's idempotency key: a retry with the same key returns the first
        redemption; the same key for another reward is refused.
        """
        if not key or len(key) > 100:
            raise BadRewardError(
                "an idempotency key of 1 to 100 characters is required",
                "须提供 1 至 100 个字符的幂等键",
            )
        now = _now_us() if now_us is None else now_us
        try:
            with self.engine.begin() as conn:
                return self._redeem_in(conn, person, owner, reward_id, key, now)
        except sa.exc.IntegrityError:
            # A concurrent retry with the same key won the race: answer with its result.
            found = self._by_key(person, key)
            if found is None:  # pragma: no cover - the only unique columns are key and code
                raise
            return self._same_reward(found, reward_id)

    def _redeem_in(
        self,
        conn: sa.Connection,
        person: str,
        owner: str | None,
        reward_id: str,
        key: str,
        now: int,
    ) -> Redemption:
        found = self._by_key(person, key, conn)
        if found is not None:
            return self._same_reward(found, reward_id)
        if owner is None:  # a person known from partner data, not (yet) a user
            owner = conn.execute(
                sa.select(people.c.owner).where(people.c.handle == person)
            ).scalar()
        if owner is None:
            raise NotFoundError(f"no person {person!r}", f"没有用户 {person!r}")
        reward = self.reward(reward_id, conn)
        if not reward.available_on(shanghai_day(now)):
            raise RewardNotAvailableError(
                f"{reward.id} can be redeemed from {reward.valid_from} to {reward.valid_until}",
                f"{reward.id} 的兑换期为 {reward.valid_from} 至 {reward.valid_until}",
            )
        taken = conn.execute(
            rewards.update()
            .where(rewards.c.id == reward.id, rewards.c.stock > 0)
            .values(stock=rewards.c.stock - 1)
        ).rowcount
        if taken != 1:
            raise OutOfStockError(f"{reward.id} is out of stock", f"{reward.id} 已兑完")
        wallet = self.ledger.open_account_in(conn, str(owner), "POINT")
        sink = self.ledger.open_account_in(conn, REWARDS_OWNER, "POINT", "redeemed")
        result = self.ledger.post_in(
            conn,
            Batch(
                "rewards",
                f"redeem:{person}:{key}",
                [
                    TransferRequest.move(
                        wallet.id,
                        sink.id,
                        "POINT",
                        reward.points,
                        "redeem",
                        meta={"reward": reward.id},
                    )
                ],
            ),
        )
        expires = now + reward.voucher_days * 86_400 * 1_000_000
        code = new_voucher_code()
        redemption_id = conn.execute(
            redemptions.insert()
            .values(
                person=person,
                reward=reward.id,
                points=reward.points,
                voucher=code,
                key=key,
                redeemed_at=now,
                expires_at=expires,
                batch_id=result.batch_id,
            )
            .returning(redemptions.c.id)
        ).scalar_one()
        return Redemption(
            redemption_id, person, reward.id, reward.points, code, now, expires, None,
            result.batch_id,
        )  # fmt: skip

    @staticmethod
    def _same_reward(found: Redemption, reward_id: str) -> Redemption:
        if found.reward != reward_id:
            raise KeyReusedError(
                f"this key already redeemed {found.reward}, not {reward_id}",
                f"该幂等键已用于兑换 {found.reward}，而不是 {reward_id}",
            )
        return found

    def _by_key(
        self, person: str, key: str, conn: sa.Connection | None = None
    ) -> Redemption | None:
        query = sa.select(redemptions).where(
            redemptions.c.person == person, redemptions.c.key == key
        )
        if conn is None:
            with self.engine.connect() as own:
                row = own.execute(query).first()
        else:
            row = conn.execute(query).first()
        return None if row is None else _redemption(row)

    def redemptions_of(self, person: str) -> list[Redemption]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(redemptions)
                .where(redemptions.c.person == person)
                .order_by(redemptions.c.id.desc())
            )
            return [_redemption(row) for row in rows]

    def use_voucher(self, code: str, sponsor: str, *, now_us: int | None = None) -> Redemption:
        """The sponsor accepts a voucher at its counter: once, before it expires."""
        now = _now_us() if now_us is None else now_us
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(redemptions, rewards.c.sponsor)
                .join(rewards, rewards.c.id == redemptions.c.reward)
                .where(redemptions.c.voucher == code.strip().upper())
            ).first()
            if row is None or row.sponsor != sponsor:
                # A sponsor cannot probe other sponsors' codes: theirs look unknown.
                raise UnknownVoucherError("no such voucher", "没有这张券")
            if row.used_at is not None:
                raise VoucherUsedError(
                    f"the voucher was used at {_iso(row.used_at)}",
                    f"这张券已于 {_iso(row.used_at)} 使用",
                )
            if now > row.expires_at:
                raise VoucherExpiredError(
                    f"the voucher expired at {_iso(row.expires_at)}",
                    f"这张券已于 {_iso(row.expires_at)} 过期",
                )
            used = conn.execute(
                redemptions.update()
                .where(redemptions.c.id == row.id, redemptions.c.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            if used != 1:  # pragma: no cover - a concurrent use between read and write
                raise VoucherUsedError("the voucher was just used", "这张券刚刚被使用")
            return replace(_redemption(row), used_at=now)

    # expiry

    def expire_points(self, rule: ExpiryRule, today: date) -> dict[str, Any]:
        """Lapse every person's points earned before the rule's cut-off (积分过期), idempotently."""
        cutoff = rule.cutoff(today)
        cutoff_us = day_start_us(cutoff)
        expired_total = 0
        people_count = 0
        with self.engine.begin() as conn:
            wallets = _person_point_accounts(conn)
            earned = _sums(conn, transfers.c.credit_account_id, cutoff_us)
            debited = _sums(conn, transfers.c.debit_account_id, None)
            sink = self.ledger.open_account_in(conn, REWARDS_OWNER, "POINT", "expired")
            moves = []
            for account_id in wallets:
                amount = points_to_expire(earned.get(account_id, 0), debited.get(account_id, 0))
                if amount:
                    moves.append(
                        TransferRequest.move(
                            account_id,
                            sink.id,
                            "POINT",
                            amount,
                            "points_expired",
                            key=f"expire:{account_id}:{cutoff.isoformat()}",
                            meta={"cutoff": cutoff.isoformat()},
                        )
                    )
            for start in range(0, len(moves), EXPIRY_CHUNK):
                chunk = moves[start : start + EXPIRY_CHUNK]
                keys = ",".join(str(m.debit) for m in chunk)
                self.ledger.post_in(
                    conn, Batch("rewards", f"expire:{cutoff.isoformat()}:{hash_text(keys)}", chunk)
                )
                expired_total += sum(m.amount for m in chunk)
                people_count += len(chunk)
        return {
            "cutoff": cutoff.isoformat(),
            "people": people_count,
            "points_expired": expired_total,
        }


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _person_point_accounts(conn: sa.Connection) -> list[int]:
    rows = conn.execute(
        sa.select(accounts.c.id)
        .join(people, people.c.owner == accounts.c.owner)
        .where(accounts.c.asset == "POINT", accounts.c.flags.op("&")(int(AccountFlags.ISSUER)) == 0)
        .order_by(accounts.c.id)
    )
    return [row.id for row in rows]


def _sums(
    conn: sa.Connection, column: sa.ColumnElement[Any], before_us: int | None
) -> dict[int, int]:
    query = (
        sa.select(column, sa.func.sum(transfers.c.amount))
        .where(
            transfers.c.asset == "POINT",
            transfers.c.kind.in_([int(TransferKind.POSTED), int(TransferKind.POST_PENDING)]),
        )
        .group_by(column)
    )
    if before_us is not None:
        query = query.where(transfers.c.created_at < before_us)
    return {int(k): int(v) for k, v in conn.execute(query)}


def _reward(row: sa.Row[Any]) -> Reward:
    return Reward(
        id=row.id,
        title_zh=row.title_zh,
        title_en=row.title_en,
        sponsor=row.sponsor,
        points=int(row.points),
        stock=int(row.stock),
        valid_from=date.fromisoformat(row.valid_from),
        valid_until=date.fromisoformat(row.valid_until),
        voucher_days=int(row.voucher_days),
    )


def _redemption(row: sa.Row[Any]) -> Redemption:
    return Redemption(
        id=int(row.id),
        person=row.person,
        reward=row.reward,
        points=int(row.points),
        voucher=row.voucher,
        redeemed_at=int(row.redeemed_at),
        expires_at=int(row.expires_at),
        used_at=None if row.used_at is None else int(row.used_at),
        batch_id=int(row.batch_id),
    )
