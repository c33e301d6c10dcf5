"""The tables, as SQLAlchemy Core metadata; Alembic migrations create them.

Conventions, chosen for speed and for a later sharded PostgreSQL (Citus-style):
- Ids are 64-bit integers allocated by carbonbook in increasing order, so every insert appends
  to the right edge of its index (random keys cost 3-7x, see DESIGN.md "Storage and scale").
- Instants are integer microseconds since the Unix epoch (UTC); amounts are integers in the
  asset's unit. No float and no database decimal anywhere.
- Derived state (balances, holds) sits beside the facts (transfers) and `audit verify` proves
  the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# On SQLite an INTEGER PRIMARY KEY is the rowid: the table is stored in key order.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Micros = sa.BigInteger  # microseconds since the epoch, UTC
Amount = sa.BigInteger  # integer units of an asset (fen, mg, points, tonnes)

# ---------------------------------------------------------------------------------------------
# Ledger
# ---------------------------------------------------------------------------------------------

assets = sa.Table(
    "assets",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("unit", sa.String(20), nullable=False),  # fen, point, mg, t
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("asset", sa.String(40), sa.ForeignKey("assets.code"), nullable=False),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Micros, nullable=False),
    sa.UniqueConstraint("owner", "asset", "name"),
)

# The hot half of an account, apart from its cold half (owner, asset, name, flags): every
# transfer rewrites two balances, and each rewrite costs its whole page in the write-ahead
# log, so the fewer pages the balances fill, the less a batch writes. 100,000 narrow rows fill
# about a third of the pages the wide account rows did; a side run of 1,000-transfer batches
# on SQLite (insert + 2,000 random balance updates) went from 47,900 to 63,100 transfers/s.
balances = sa.Table(
    "balances",
    metadata,
    sa.Column(
        "account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False
    ),
    sa.Column("balance", Amount, nullable=False, server_default="0"),
    sa.Column("held", Amount, nullable=False, server_default="0"),
    # Rewritten on every transfer; leave room for HOT updates on PG.
    postgresql_with={"fillfactor": 80},
)

# An account with its balances, for reading (never for writing: write `accounts` for the
# cold half, and balances only through the ledger's store). Columns in `Account`'s order.
account_balances = (
    sa.select(
        accounts.c.id,
        accounts.c.owner,
        accounts.c.asset,
        accounts.c.name,
        accounts.c.flags,
        balances.c.balance,
        balances.c.held,
        accounts.c.created_at,
    )
    .join_from(accounts, balances, balances.c.account_id == accounts.c.id)
    .subquery("account_balances")
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=False),
    sa.Column("batch_id", sa.BigInteger, nullable=False),
    sa.Column("issuer", sa.String(80), nullable=False),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("debit_account_id", sa.BigInteger, nullable=False),
    sa.Column("credit_account_id", sa.BigInteger, nullable=False),
    sa.Column("asset", sa.String(40), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    # 0 posted, 1 pending (reserve), 2 post of a pending, 3 void of a pending
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("pending_id", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.String(60), nullable=False),
    sa.Column("meta", sa.Text, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.Index(None, "issuer", "key", unique=True),
    sa.Index(None, "debit_account_id", "id"),
    sa.Index(None, "credit_account_id", "id"),
)

pending_transfers = sa.Table(
    "pending_transfers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=False),  # the pending transfer's id
    sa.Column("debit_account_id", sa.BigInteger, nullable=False),
    sa.Column("credit_account_id", sa.BigInteger, nullable=False),
    sa.Column("asset", sa.String(40), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),  # 0 open, 1 posted, 2 voided
    sa.Column("resolved_by", sa.BigInteger, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
)

# One row per batch, chained by hash: the batch header, its idempotency key, and a digest of
# every transfer row it wrote (8 bytes each, in id order) so `audit verify` can name a row.
journal = sa.Table(
    "journal",
    metadata,
    sa.Column("seq", Id, primary_key=True, autoincrement=False),
    sa.Column("batch_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("issuer", sa.String(80), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("request_digest", sa.LargeBinary(32), nullable=False),
    sa.Column("first_transfer_id", sa.BigInteger, nullable=False),
    sa.Column("transfer_count", sa.Integer, nullable=False),
    sa.Column("row_digests", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    sa.UniqueConstraint("issuer", "key"),
)

# The single writer's cursor: next ids and the chain's head. Its row is the ledger's lock:
# a batch takes it first and holds it to commit (see ledger.store).
ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    sa.Column("next_id", sa.BigInteger, nullable=False),
)

# ---------------------------------------------------------------------------------------------
# People, roles, credentials, and the security audit log
# ---------------------------------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=False),
    sa.Column("username", sa.String(120), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("locale", sa.String(10), nullable=False, server_default="zh"),
    sa.Column("owner", sa.String(120), nullable=False),  # the ledger owner this user acts for
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Micros, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),  # sha256 of the secret
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("expires_at", Micros, nullable=True),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
)

# A web session kept on the server (migration 0024): the cookie carries a random id, this row
# its SHA-256; logout deletes the row, so a copied cookie stops working.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("sid_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("expires_at", Micros, nullable=False),
)

# Exchange holidays (休市) the operator loaded with `carbonbook calendar load` (migration 0024):
# a year held here replaces that year of data/exchange/markets.toml's calendar.
exchange_holidays = sa.Table(
    "exchange_holidays",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("year", sa.Integer, nullable=False, index=True),
    sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("loaded_at", Micros, nullable=False),
)

partner_platforms = sa.Table(
    "partner_platforms",
    metadata,
    sa.Column("code", sa.String(60), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("key_id", sa.String(60), nullable=False, unique=True),
    # The HMAC secret must be readable to verify signatures; keep the database access-controlled.
    sa.Column("hmac_secret", sa.String(128), nullable=False),
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=False, server_default="600"),
    sa.Column("created_at", Micros, nullable=False),
    # The partner's scope, set by the operator (`carbonbook partner add`): the one methodology
    # ID@VERSION it claims under, and JSON lists of its behaviours and evidence tiers.
    sa.Column("methodology", sa.String(80), nullable=True),
    sa.Column("behaviours", sa.Text, nullable=True),
    sa.Column("evidence", sa.Text, nullable=True),
)

request_nonces = sa.Table(
    "request_nonces",
    metadata,
    sa.Column("key_id", sa.String(60), primary_key=True),
    sa.Column("nonce", sa.String(80), primary_key=True),
    sa.Column("seen_at", Micros, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", Id, primary_key=True, autoincrement=False),
    sa.Column("at", Micros, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),  # user id or system, never a name
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

# ---------------------------------------------------------------------------------------------
# Personal carbon accounts (个人碳账本)
# ---------------------------------------------------------------------------------------------

people = sa.Table(
    "people",
    metadata,
    sa.Column("handle", sa.String(120), primary_key=True),  # the partner-visible person id
    sa.Column("owner", sa.String(120), nullable=False, unique=True),  # ledger owner
    sa.Column("user_id", sa.BigInteger, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
)

# Consent records: a person links a partner platform (and may revoke it).
platform_links = sa.Table(
    "platform_links",
    metadata,
    sa.Column("person", sa.String(120), primary_key=True),
    sa.Column("platform", sa.String(60), primary_key=True),
    sa.Column("consented_at", Micros, nullable=False),
    sa.Column("revoked_at", Micros, nullable=True),
)

# One row per accepted behaviour event; (platform, event_id) is its identity.
personal_events = sa.Table(
    "personal_events",
    metadata,
    sa.Column("platform", sa.String(60), primary_key=True),
    sa.Column("event_id", sa.String(120), primary_key=True),
    sa.Column("person", sa.String(120), nullable=False),
    sa.Column("behaviour", sa.String(60), nullable=False),
    sa.Column("quantity", sa.String(40), nullable=False),  # the decimal as received
    sa.Column("unit", sa.String(20), nullable=False),
    sa.Column("evidence", sa.String(20), nullable=False),
    sa.Column("occurred_at", Micros, nullable=False),
    sa.Column("local_day", sa.String(10), nullable=False),  # YYYY-MM-DD in the scheme's zone
    sa.Column("methodology", sa.String(80), nullable=False),  # ID@VERSION it was quantified under
    sa.Column("reduction_mg", Amount, nullable=False),  # 0 when flagged as a duplicate
    sa.Column("status", sa.SmallInteger, nullable=False),  # 0 credited, 1 cross-platform duplicate
    sa.Column("batch_id", sa.BigInteger, nullable=True),  # the ledger batch that credited it
    sa.Column("ingested_at", Micros, nullable=False),
    sa.Index(None, "person", "behaviour", "occurred_at"),
)

# Per person, day and methodology: milligrams credited and points awarded so far, so a day
# spread over several batches earns round(total / 100 g) points, never more.
personal_days = sa.Table(
    "personal_days",
    metadata,
    sa.Column("person", sa.String(120), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("methodology", sa.String(80), primary_key=True),
    sa.Column("reduction_mg", Amount, nullable=False),
    sa.Column("points", Amount, nullable=False),
    sa.Column("units", sa.Text, nullable=False),  # JSON: behaviour -> units so far (daily caps)
)

# Rewards (积分兑换): the catalogue and each redemption with its voucher.
rewards = sa.Table(
    "rewards",
    metadata,
    sa.Column("id", sa.String(60), primary_key=True),
    sa.Column("title_zh", sa.String(200), nullable=False),
    sa.Column("title_en", sa.String(200), nullable=False),
    sa.Column("sponsor", sa.String(120), nullable=False),  # the partner that honours vouchers
    sa.Column("points", Amount, nullable=False),
    sa.Column("stock", Amount, nullable=False),
    sa.Column("valid_from", sa.String(10), nullable=False),  # Asia/Shanghai days, inclusive
    sa.Column("valid_until", sa.String(10), nullable=False),
    sa.Column("voucher_days", sa.Integer, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.CheckConstraint("stock >= 0", name="stock_not_negative"),
)

redemptions = sa.Table(
    "redemptions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("person", sa.String(120), nullable=False),
    sa.Column("reward", sa.String(60), nullable=False),
    sa.Column("points", Amount, nullable=False),
    sa.Column("voucher", sa.String(20), nullable=False, unique=True),
    sa.Column("key", sa.String(100), nullable=False),  # the client's idempotency key
    sa.Column("redeemed_at", Micros, nullable=False),
    sa.Column("expires_at", Micros, nullable=False),
    sa.Column("used_at", Micros, nullable=True),
    sa.Column("batch_id", sa.BigInteger, nullable=False),  # the ledger batch that paid for it
    sa.UniqueConstraint("person", "key"),
)

# Household electricity (家庭节约用电): one daily register reading per meter from a utility;
# the day's use, the baseline it was compared with and the kWh saved are kept beside it.
meter_readings = sa.Table(
    "meter_readings",
    metadata,
    sa.Column("platform", sa.String(60), primary_key=True),  # the utility partner
    sa.Column("meter_id", sa.String(120), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # the Asia/Shanghai day the reading closes
    sa.Column("person", sa.String(120), nullable=False),
    sa.Column("reading_wh", Amount, nullable=False),  # the register, in Wh
    sa.Column("used_wh", Amount, nullable=True),  # reading - the previous day's; None: no previous
    sa.Column("baseline_wh", Amount, nullable=True),
    sa.Column("saved_wh", Amount, nullable=True),
    sa.Column("methodology", sa.String(80), nullable=True),  # ID@VERSION of the evaluation
    sa.Column("received_at", Micros, nullable=False),
)

# A meter belongs to one person (电表绑定): the first reading stored binds it; the key decides a
# race between two batches, and a reading naming another person is refused.
meter_bindings = sa.Table(
    "meter_bindings",
    metadata,
    sa.Column("platform", sa.String(60), primary_key=True),  # the utility partner
    sa.Column("meter_id", sa.String(120), primary_key=True),
    sa.Column("person", sa.String(120), nullable=False),
    sa.Column("bound_at", Micros, nullable=False),
)

# Photo check-ins (拍照打卡, 光盘打卡): the photo, its perceptual hash, and the review.
checkins = sa.Table(
    "checkins",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("person", sa.String(120), nullable=False),
    sa.Column("behaviour", sa.String(60), nullable=False),
    sa.Column("methodology", sa.String(80), nullable=False),
    sa.Column("phash", sa.String(16), nullable=False),  # 64-bit perceptual hash, hex
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("media_type", sa.String(20), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("photo", sa.LargeBinary, nullable=False),  # re-encoded: no EXIF/GPS is kept
    # ORB features and a thumbnail (personal/photo_match.py); None: computed on first compare
    sa.Column("features", sa.LargeBinary, nullable=True),
    # 0 pending, 1 approved, 2 rejected, 3 approved but not credited (e.g. the daily cap)
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("submitted_at", Micros, nullable=False),
    sa.Column("reviewer", sa.String(120), nullable=True),
    sa.Column("reviewed_at", Micros, nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Index(None, "status", "id"),
)

# ---------------------------------------------------------------------------------------------
# Registry and compliance: 配额与履约
# ---------------------------------------------------------------------------------------------

# Every registry operation: issue, transfer, surrender (清缴), cancel (注销), freeze. A transfer
# awaiting its second approver holds the units with a two-phase ledger transfer.
registry_ops = sa.Table(
    "registry_ops",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),  # the owner acting; keys are per actor
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("asset", sa.String(40), nullable=True),
    sa.Column("quantity", Amount, nullable=False),
    sa.Column("from_owner", sa.String(120), nullable=True),
    sa.Column("to_owner", sa.String(120), nullable=True),
    sa.Column("period", sa.String(40), nullable=True),  # surrenders: the compliance period
    sa.Column("role", sa.String(10), nullable=True),  # surrenders: allowance | offset
    sa.Column("state", sa.SmallInteger, nullable=False),  # 0 done, 1 awaiting approval, 2 rejected
    sa.Column("pending_transfer", sa.BigInteger, nullable=True),
    sa.Column("batch_id", sa.BigInteger, nullable=True),
    sa.Column("requested_by", sa.String(120), nullable=False),
    sa.Column("decided_by", sa.String(120), nullable=True),
    sa.Column("meta", sa.Text, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("decided_at", Micros, nullable=True),
    sa.UniqueConstraint("actor", "key"),
    sa.Index(None, "period", "from_owner"),
    sa.Index(None, "state", "id"),
)

# Serial-number blocks: serials start..end of an asset, held by a ledger account or retired.
registry_blocks = sa.Table(
    "registry_blocks",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("asset", sa.String(40), nullable=False),
    sa.Column("issuance", sa.BigInteger, nullable=False),  # the issuing registry_ops id
    sa.Column("serial_start", sa.BigInteger, nullable=False),
    sa.Column("serial_end", sa.BigInteger, nullable=False),
    sa.Column("holder", sa.BigInteger, nullable=False),  # ledger account id
    sa.Column("state", sa.SmallInteger, nullable=False),  # 0 held, 1 surrendered, 2 cancelled
    sa.Column("retired_by", sa.BigInteger, nullable=True),  # the surrender or cancel op
    sa.UniqueConstraint("asset", "serial_start"),
    sa.Index(None, "holder", "state", "serial_start"),
    sa.Index(None, "retired_by"),
)

# Trusted counterparties (EU Union Registry practice): transfers elsewhere need a second person.
registry_trusted = sa.Table(
    "registry_trusted",
    metadata,
    sa.Column("owner", sa.String(120), primary_key=True),
    sa.Column("counterparty", sa.String(120), primary_key=True),
    sa.Column("added_by", sa.String(120), nullable=False),
    sa.Column("added_at", Micros, nullable=False),
)

# Public certificates of voluntary cancellation (自愿注销).
registry_certificates = sa.Table(
    "registry_certificates",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # public, unguessable
    sa.Column("op_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("holder", sa.String(120), nullable=False),
    sa.Column("beneficiary", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("asset", sa.String(40), nullable=False),
    sa.Column("quantity", Amount, nullable=False),
    sa.Column("serials", sa.Text, nullable=False),  # JSON list of serial ranges
    sa.Column("created_at", Micros, nullable=False),
)

# Verified emissions per entity and compliance period: the obligation to surrender.
compliance_obligations = sa.Table(
    "compliance_obligations",
    metadata,
    sa.Column("period", sa.String(40), primary_key=True),
    sa.Column("owner", sa.String(120), primary_key=True),
    sa.Column("verified_t", Amount, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),  # e.g. report:42, or the regulator's entry
    sa.Column("set_by", sa.String(120), nullable=False),
    sa.Column("set_at", Micros, nullable=False),
    # JSON, when the power sector's shortfall cap (履约缺口上限) or gas exemption lowered the
    # obligation: the verified emissions, the allocation, the plan and the rule; verified_t
    # above is then the capped figure owed. NULL when the obligation is the verified figure.
    sa.Column("cap", sa.Text, nullable=True),
)

# The bridge from grams to tonnes: each run aggregates personal events into whole tonnes of
# PCER, with a Merkle root over its events; an event belongs to at most one run (its key).
pcer_runs = sa.Table(
    "pcer_runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("unit_type", sa.String(20), nullable=False),
    sa.Column("vintage", sa.Integer, nullable=False),
    sa.Column("aggregator", sa.String(120), nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("events_mg", Amount, nullable=False),
    sa.Column("carried_in_mg", Amount, nullable=False),
    sa.Column("tonnes", Amount, nullable=False),
    sa.Column("remainder_mg", Amount, nullable=False),  # carried into the next run
    sa.Column("merkle_root", sa.String(64), nullable=False),
    sa.Column("issue_op", sa.BigInteger, nullable=True),  # registry_ops id of the issuance
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Index(None, "unit_type", "vintage", "id"),
)

pcer_leaves = sa.Table(
    "pcer_leaves",
    metadata,
    sa.Column("platform", sa.String(60), primary_key=True),
    sa.Column("event_id", sa.String(120), primary_key=True),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("leaf_index", sa.Integer, nullable=False),
    sa.Column("person", sa.String(120), nullable=False),
    sa.Column("reduction_mg", Amount, nullable=False),
    sa.Column("leaf", sa.Text, nullable=False),  # the canonical JSON that was hashed
    sa.UniqueConstraint("run_id", "leaf_index"),
    sa.Index(None, "person"),
)

# ---------------------------------------------------------------------------------------------
# Enterprise MRV: facility-year reports and their workflow (draft → submitted → verified →
# locked). The document is kept verbatim with its hash; every transition is a history row.
# ---------------------------------------------------------------------------------------------

mrv_reports = sa.Table(
    "mrv_reports",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("scheme", sa.String(40), nullable=False),  # whose compliance the figure feeds
    sa.Column("facility", sa.String(120), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("methodology", sa.String(60), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # bumped by every edit
    sa.Column("document", sa.Text, nullable=False),  # the carbonbook.mrv.report/1 JSON
    sa.Column("doc_hash", sa.String(64), nullable=False),  # sha256 of the canonical document
    sa.Column("result", sa.Text, nullable=False),  # the computed carbonbook.mrv.result/1 JSON
    sa.Column("direct_tco2", sa.String(24), nullable=False),  # ETS boundary, 0.01 t
    sa.Column("total_tco2", sa.String(24), nullable=False),  # GB/T boundary, 0.01 t
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    sa.Column("verified_by", sa.String(120), nullable=True),
    sa.Column("locked_by", sa.String(120), nullable=True),
    sa.Column("locked_at", Micros, nullable=True),
    sa.UniqueConstraint("owner", "facility", "year"),
    sa.Index(None, "state", "id"),
)

mrv_report_events = sa.Table(
    "mrv_report_events",
    metadata,
    sa.Column("report_id", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("at", Micros, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # create, edit, submit, return, ...
    sa.Column("state", sa.String(12), nullable=False),  # the state after the action
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("doc_hash", sa.String(64), nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
)

# ---------------------------------------------------------------------------------------------
# Allocation (配额分配): a run computes a plan's allowances for a set of entities in one phase
# (pre-allocation or final), is approved by a second regulator, then issued in one
# transaction. A final run issues the true-up: final allowance minus what was pre-allocated.
# ---------------------------------------------------------------------------------------------

allocation_runs = sa.Table(
    "allocation_runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("plan", sa.String(60), nullable=False),
    sa.Column("phase", sa.String(10), nullable=False),  # pre | final
    sa.Column("state", sa.String(10), nullable=False),  # computed | approved | issued | rejected
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("decided_by", sa.String(120), nullable=True),
    sa.Column("decided_at", Micros, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("issued_at", Micros, nullable=True),
    sa.Index(None, "plan", "id"),
)

allocation_lines = sa.Table(
    "allocation_lines",
    metadata,
    sa.Column("run_id", sa.BigInteger, primary_key=True),
    sa.Column("owner", sa.String(120), primary_key=True),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON, as given
    sa.Column("parts", sa.Text, nullable=False),  # JSON lineage of the computation
    sa.Column("allocation_t", Amount, nullable=False),  # this phase's allowance
    sa.Column("already_t", Amount, nullable=False),  # pre-allocated before (final phase)
    sa.Column("issue_t", Amount, nullable=False),  # what issuing the run gives
    sa.Column("excess_t", Amount, nullable=False),  # pre-allocated beyond the final figure
    sa.Column("issue_op", sa.BigInteger, nullable=True),
    sa.Index(None, "owner"),
)

# ---------------------------------------------------------------------------------------------
# The exchange (交易系统): orders with their reservations, and trades settled on the ledger.
# ---------------------------------------------------------------------------------------------

exchange_orders = sa.Table(
    "exchange_orders",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("market", sa.String(20), nullable=False),
    sa.Column("instrument", sa.String(40), nullable=False),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),  # idempotency key, per owner
    sa.Column("side", sa.String(4), nullable=False),  # buy | sell
    sa.Column("price_fen", Amount, nullable=False),
    sa.Column("quantity", Amount, nullable=False),
    sa.Column("remaining", Amount, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # live | filled | cancelled | expired
    sa.Column("pending_transfer", sa.BigInteger, nullable=True),  # the reservation's hold
    sa.Column("reserved", Amount, nullable=False),  # fen (buy) or tonnes (sell) still held
    sa.Column("placed_by", sa.String(120), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),  # the Shanghai trading day
    # listing (挂牌: matched, the rest rests) | take (摘牌: fills one named listing, never rests)
    sa.Column("mode", sa.String(8), nullable=False, server_default="listing"),
    sa.Column("takes", sa.BigInteger, nullable=True),  # a take-up: the listing it took up
    sa.UniqueConstraint("owner", "key"),
    sa.Index(None, "market", "instrument", "state", "id"),
)

# The online (线上) modes of `exchange_trades.mode`: listing and take-up trades (挂牌/摘牌) and
# one-sided auction awards (单向竞价) set the high, low and close and so the next day's
# reference price; block agreement trades (大宗协议) are negotiated off the book and count in
# volume only. Here, beside the table, because the exchange and market data both read it.
ONLINE_MODES = ("listing", "auction")

exchange_trades = sa.Table(
    "exchange_trades",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("market", sa.String(20), nullable=False),
    sa.Column("instrument", sa.String(40), nullable=False),
    sa.Column("buy_order", sa.BigInteger, nullable=False),
    sa.Column("sell_order", sa.BigInteger, nullable=False),
    sa.Column("buyer", sa.String(120), nullable=False),
    sa.Column("seller", sa.String(120), nullable=False),
    sa.Column("price_fen", Amount, nullable=False),
    sa.Column("quantity", Amount, nullable=False),
    sa.Column("aggressor", sa.String(4), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False, server_default="listing"),  # listing | block
    sa.Column("batch_id", sa.BigInteger, nullable=False),  # the ledger batch (DvP)
    sa.Column("at", Micros, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Index(None, "market", "instrument", "id"),
    sa.Index(None, "buyer", "day"),
)

# Block agreement trades (大宗协议): reported by one party with its side reserved, confirmed by
# the counterparty (its side reserved and both settled in one batch), or rejected/withdrawn.
exchange_blocks = sa.Table(
    "exchange_blocks",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("market", sa.String(20), nullable=False),
    sa.Column("instrument", sa.String(40), nullable=False),
    sa.Column("seller", sa.String(120), nullable=False),
    sa.Column("buyer", sa.String(120), nullable=False),
    sa.Column("reporter", sa.String(120), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("price_fen", Amount, nullable=False),
    sa.Column("quantity", Amount, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # reported | settled | rejected | withdrawn
    sa.Column("pending_transfer", sa.BigInteger, nullable=True),  # the reporter's reservation
    sa.Column("trade_id", sa.BigInteger, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("decided_at", Micros, nullable=True),
    sa.Column("decided_by", sa.String(120), nullable=True),
    sa.UniqueConstraint("reporter", "key"),
    sa.Index(None, "buyer", "state"),
    sa.Index(None, "seller", "state"),
)

# One-sided bidding (单向竞价): a seller's lot with its units reserved, bids with their cash
# reserved, allocated and settled in one batch at the close.
exchange_auctions = sa.Table(
    "exchange_auctions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("market", sa.String(20), nullable=False),
    sa.Column("instrument", sa.String(40), nullable=False),
    sa.Column("seller", sa.String(120), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("quantity", Amount, nullable=False),
    sa.Column("reserve_fen", Amount, nullable=False),
    sa.Column("pricing", sa.String(12), nullable=False),  # pay_as_bid | uniform
    sa.Column("opens_at", Micros, nullable=False),
    sa.Column("closes_at", Micros, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # open | closed
    sa.Column("pending_transfer", sa.BigInteger, nullable=True),
    sa.Column("sold", Amount, nullable=False),
    sa.Column("batch_id", sa.BigInteger, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.UniqueConstraint("seller", "key"),
)

exchange_bids = sa.Table(
    "exchange_bids",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("auction_id", sa.BigInteger, nullable=False),
    sa.Column("bidder", sa.String(120), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("price_fen", Amount, nullable=False),
    sa.Column("quantity", Amount, nullable=False),
    sa.Column("awarded", Amount, nullable=False),
    sa.Column("paid_fen", Amount, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # live | won | lost
    sa.Column("pending_transfer", sa.BigInteger, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.UniqueConstraint("bidder", "key"),
    sa.Index(None, "auction_id", "id"),
)

# The Idempotency-Key of an exchange write that makes no row of its own (a cancel, a block
# confirmation or decline): what it did and to what, so a retry returns the first answer and
# the key reused for something else is KEY_REUSED.
exchange_requests = sa.Table(
    "exchange_requests",
    metadata,
    sa.Column("owner", sa.String(120), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("action", sa.String(20), nullable=False),  # cancel | confirm | decline
    sa.Column("target", sa.BigInteger, nullable=False),  # the order or block
    sa.Column("created_at", Micros, nullable=False),
)

# Methodology versions published by a regulator through the API (the shipped ones are files).
methodology_versions = sa.Table(
    "methodology_versions",
    metadata,
    sa.Column("ref", sa.String(100), primary_key=True),  # ID@VERSION, immutable once published
    sa.Column("source_toml", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("published_by", sa.String(120), nullable=False),
    sa.Column("published_at", Micros, nullable=False),
)

# --- personal: levels, badges (勋章), streaks and leaderboards (migration 0014) ---

# Badges awarded: one row per person and badge, ever (the primary key makes awarding
# idempotent). `earned_day` is the Asia/Shanghai day the rule first held, `earned_at` when it
# was written; the rules' version and sha256 say which rules it was earned under.
person_badges = sa.Table(
    "person_badges",
    metadata,
    sa.Column("person", sa.String(120), primary_key=True),
    sa.Column("badge", sa.String(60), primary_key=True),
    sa.Column("rules_version", sa.String(40), nullable=False),
    sa.Column("rules_hash", sa.String(64), nullable=False),
    sa.Column("earned_day", sa.String(10), nullable=False),
    sa.Column("earned_at", Micros, nullable=False),
)

# Who a person competes with on leaderboards: a city, an organisation and a team in it (each
# optional), set by the person or an administrator, and the name boards show (else a masked
# handle: a handle may be a phone number or an e-mail address).
person_groups = sa.Table(
    "person_groups",
    metadata,
    sa.Column("person", sa.String(120), primary_key=True),
    sa.Column("display_name", sa.String(40), nullable=True),
    sa.Column("city", sa.String(60), nullable=True),
    sa.Column("organisation", sa.String(120), nullable=True),
    sa.Column("team", sa.String(120), nullable=True),
    sa.Column("set_by", sa.String(120), nullable=False),  # user:ID of the person or the admin
    sa.Column("updated_at", Micros, nullable=False),
    sa.Index(None, "city"),
    sa.Index(None, "organisation", "team"),
)

# --- mrv: monthly activity data and lab reports, the 40-day filing (migration 0015) ---

# Monthly activity records (月度存证): one row per version of (owner, facility, year, month,
# line); a row is never updated, a correction is the next version with its reason. `late` is
# the stored 40-day flag; `flags` holds every data-quality flag (JSON list of texts).
mrv_monthly_records = sa.Table(
    "mrv_monthly_records",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("facility", sa.String(120), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("month", sa.Integer, nullable=False),
    sa.Column("line", sa.String(60), nullable=False),  # the source line's id, the filer's
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("category", sa.String(24), nullable=False),  # fuel_combustion, process, ...
    sa.Column("name", sa.String(60), nullable=False),  # fuel, material or product
    sa.Column("quantity", sa.String(40), nullable=False),  # exact decimal text
    sa.Column("unit", sa.String(20), nullable=False),
    sa.Column("document", sa.Text, nullable=False),  # the carbonbook.mrv.month/1 JSON
    sa.Column("doc_hash", sa.String(64), nullable=False),  # sha256 of the canonical document
    sa.Column("late", sa.Boolean, nullable=False),  # filed after the 40-day deadline
    sa.Column("flags", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),  # why this version corrects the one before
    sa.Column("filed_by", sa.String(120), nullable=False),
    sa.Column("filed_at", Micros, nullable=False),
    sa.UniqueConstraint("owner", "facility", "year", "month", "line", "version"),
    sa.Index(None, "owner", "facility", "year"),
)

# The lab reports (检测报告) a record's measured parameters cite, one row per record version.
mrv_lab_reports = sa.Table(
    "mrv_lab_reports",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("report_no", sa.String(60), nullable=False),
    sa.Column("lab", sa.String(200), nullable=False),
    sa.Column("accreditation", sa.String(40), nullable=False),  # "CNAS L1234", "CMA 1612..."
    sa.Column("sample_date", sa.String(10), nullable=False),  # ISO date
    sa.Column("report_date", sa.String(10), nullable=False),
    sa.Column("file_name", sa.String(200), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # the file in mrv_lab_report_files
    sa.Column("late", sa.Boolean, nullable=False),  # issued after the 40-day deadline
    sa.UniqueConstraint("record_id", "report_no"),
)

# The files themselves (PDF or image), stored once by content hash.
mrv_lab_report_files = sa.Table(
    "mrv_lab_report_files",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("media_type", sa.String(40), nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("stored_at", Micros, nullable=False),
)

# --- exchange: trading accounts (KYC), bank bindings, funds, the simulated bank (0016) ---

# One trading account per entity (交易账户), opened after a KYC review by exchange staff.
trading_accounts = sa.Table(
    "trading_accounts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False, unique=True),  # one per entity
    sa.Column("kind", sa.String(12), nullable=False),  # legal_person | individual
    sa.Column("entity_name", sa.String(200), nullable=False),
    # Legal persons: the unified social credit code (统一社会信用代码), public by law.
    # Individuals: only the last four characters of the ID number and its keyed digest.
    sa.Column("identifier", sa.String(18), nullable=False),
    sa.Column("identifier_digest", sa.String(64), nullable=False, unique=True),
    sa.Column("state", sa.String(10), nullable=False),  # applied | approved | rejected
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("applied_by", sa.String(120), nullable=False),
    sa.Column("applied_at", Micros, nullable=False),
    sa.Column("reviewed_by", sa.String(120), nullable=True),
    sa.Column("reviewed_at", Micros, nullable=True),
)

# The KYC record of an entity (实名信息), keyed by its identifier (the credit code's digest, as
# trading_accounts.identifier_digest): the name the exchange knows it by. Written when an
# account is applied for, binding once the review approves it: a later application with the
# same code must give the same name, and a legal person's approved name is no other code's.
# The account shows, and the same-name bank binding checks, this name (0025).
kyc_records = sa.Table(
    "kyc_records",
    metadata,
    sa.Column("identifier_digest", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(12), nullable=False),  # legal_person | individual
    sa.Column("entity_name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # applied | approved
    sa.Column("recorded_by", sa.String(120), nullable=False),
    sa.Column("recorded_at", Micros, nullable=False),
    sa.Column("approved_by", sa.String(120), nullable=True),
    sa.Column("approved_at", Micros, nullable=True),
    sa.Index(None, "entity_name"),
)

# The bank account bound to a trading account (同名账户): where deposits come from and
# withdrawals go to. The number is personal data: responses and logs show it masked.
bank_bindings = sa.Table(
    "bank_bindings",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("account_id", sa.BigInteger, nullable=False),
    sa.Column("bank", sa.String(20), nullable=False),
    sa.Column("account_no", sa.String(40), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # bound | unbound
    sa.Column("bound_by", sa.String(120), nullable=False),
    sa.Column("bound_at", Micros, nullable=False),
    sa.Column("unbound_at", Micros, nullable=True),
    sa.Index(None, "account_id", "state"),
)

# Deposits (入金) and withdrawals (出金) through the settlement bank. `ref` is the instruction's
# identity at the bank: a retry after a lost answer asks again under the same ref.
fund_transfers = sa.Table(
    "fund_transfers",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),  # deposit | withdrawal
    sa.Column("amount_fen", Amount, nullable=False),
    sa.Column("bank", sa.String(20), nullable=False),
    sa.Column("account_no", sa.String(40), nullable=False),
    sa.Column("ref", sa.String(40), nullable=False, unique=True),
    sa.Column("state", sa.String(10), nullable=False),  # pending | done | failed
    sa.Column("code", sa.String(40), nullable=True),  # why it failed, or why still pending
    sa.Column("pending_transfer", sa.BigInteger, nullable=True),  # a withdrawal's hold
    sa.Column("batch_id", sa.BigInteger, nullable=True),
    sa.Column("requested_by", sa.String(120), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("completed_at", Micros, nullable=True),
    sa.UniqueConstraint("owner", "key"),
    sa.Index(None, "state", "id"),
)

# Each day's reconciliation (对账) of the bank's client-funds account with the ledger.
fund_reconciliations = sa.Table(
    "fund_reconciliations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("bank", sa.String(20), nullable=False),
    sa.Column("bank_balance_fen", Amount, nullable=False),
    sa.Column("ledger_balance_fen", Amount, nullable=False),
    sa.Column("clients_total_fen", Amount, nullable=False),
    sa.Column("breaks", sa.Text, nullable=False),  # JSON list
    sa.Column("state", sa.String(10), nullable=False),  # balanced | breaks
    sa.Column("run_by", sa.String(120), nullable=False),
    sa.Column("run_at", Micros, nullable=False),
    sa.Index(None, "day", "id"),
)

# The simulated settlement bank's own books (模拟存管银行): a separate system in reality, kept
# in its own tables and reached only through the bank interface.
sim_bank_accounts = sa.Table(
    "sim_bank_accounts",
    metadata,
    sa.Column("account_no", sa.String(40), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("balance_fen", Amount, nullable=False),
    sa.Column("opened_at", Micros, nullable=False),
)

sim_bank_entries = sa.Table(
    "sim_bank_entries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("ref", sa.String(40), nullable=False, unique=True),
    sa.Column("debit_no", sa.String(40), nullable=False),
    sa.Column("credit_no", sa.String(40), nullable=False),
    sa.Column("amount_fen", Amount, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # done | queued | rejected
    sa.Column("code", sa.String(40), nullable=True),
    sa.Column("day", sa.String(10), nullable=False),  # booking day, Asia/Shanghai
    sa.Column("at", Micros, nullable=False),
)
