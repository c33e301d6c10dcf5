"""Interchange: a person's records as an open, signed JSON document, and importing another
platform's export (个人碳账本互认).

The format (`carbonbook.personal-export/1`, JSON Schema in docs/schemas/personal-export.schema.json)
carries each record with its identity `(platform, event_id)`, the act as reported, the
evidence level, and the `methodology@version` that quantified it with the grams it gave, so a
receiver can re-quantify under its own methodology. The exporter signs the canonical bytes of
the document without its `signature` member (keys sorted, no spaces, UTF-8) with Ed25519.

An import checks the signature against keys the importer trusts, then sends the records
through the same ingestion as a partner file: an identity already stored is a duplicate, the
same act from another platform a cross-platform duplicate, and the grams are recomputed under
the record's methodology (never taken from the file).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carbonbook.db.schema import personal_events
from carbonbook.errors import DomainError, ValidationFailedError
from carbonbook.methodology.registry import get as get_methodology
from carbonbook.numbers import mg_to_grams_text
from carbonbook.personal.service import Personal

FORMAT = "carbonbook.personal-export/1"
STATUS_NAMES = {0: "credited", 1: "cross_platform_duplicate"}
MAX_RECORDS = 1_000_000


class ExportError(ValidationFailedError):
    code = "BAD_EXPORT"


class SignatureError(DomainError):
    code = "BAD_SIGNATURE"
    http_status = 422


class UntrustedKeyError(DomainError):
    code = "UNTRUSTED_KEY"
    http_status = 422


# -- keys -----------------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ExportError(
            "the signing key is not an unencrypted PEM private key",
            "签名密钥不是未加密的 PEM 私钥",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ExportError("the signing key is not Ed25519", "签名密钥不是 Ed25519 密钥")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ExportError(
            "a trusted key is not a PEM public key", "受信公钥不是 PEM 公钥"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ExportError("a trusted key is not Ed25519", "受信公钥不是 Ed25519 密钥")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """What is signed: the document without `signature`, keys sorted, compact, UTF-8."""
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- export ---------------------------------------------------------------------------------------


def export_person(
    engine: sa.Engine, person: str, issuer: str, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """Every stored record of `person`, oldest first, signed by `issuer` with `key`."""
    e = personal_events.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(personal_events)
            .where(e.person == person)
            .order_by(e.occurred_at, e.platform, e.event_id)
        ).all()
    records = [
        {
            "platform": row.platform,
            "event_id": row.event_id,
            "behaviour": row.behaviour,
            "quantity": row.quantity,
            "unit": row.unit,
            "evidence": row.evidence,
            "occurred_at": _iso(int(row.occurred_at)),
            "methodology": row.methodology,
            "reduction_g": mg_to_grams_text(int(row.reduction_mg)),
            "status": STATUS_NAMES.get(int(row.status), "credited"),
        }
        for row in rows
    ]
    document: dict[str, Any] = {
        "format": FORMAT,
        "issuer": issuer,
        "person": person,
        "exported_at": _iso(int(datetime.now(UTC).timestamp() * 1_000_000)),
        "records": records,
    }
    public = key.public_key()
    document["signature"] = {
        "alg": "Ed25519",
        "key_id": key_id(public),
        "value": base64.b64encode(key.sign(canonical_bytes(document))).decode(),
    }
    return document


# -- import ---------------------------------------------------------------------------------------


def verify_export(document: Any, trusted: list[Ed25519PublicKey]) -> dict[str, Any]:
    """The document if its shape is right and a trusted key signed exactly these bytes."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportError(f"not a {FORMAT} document", f"不是 {FORMAT} 文档")
    for name in ("issuer", "person", "exported_at"):
        if not isinstance(document.get(name), str) or not document[name]:
            raise ExportError(
                f"field {name!r} must be a non-empty string", f"字段 {name!r} 须为非空字符串"
            )
    records = document.get("records")
    if not isinstance(records, list) or len(records) > MAX_RECORDS:
        raise ExportError(
            f"records must be a list of at most {MAX_RECORDS:,}",
            f"records 须为不超过 {MAX_RECORDS:,} 条的列表",
        )
    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519":
        raise SignatureError("the export is not signed with Ed25519", "导出文件没有 Ed25519 签名")
    by_id = {key_id(k): k for k in trusted}
    key = by_id.get(str(signature.get("key_id")))
    if key is None:
        raise UntrustedKeyError(
            f"key {signature.get('key_id')!r} of {document['issuer']!r} is not trusted here",
            f"{document['issuer']!r} 的密钥 {signature.get('key_id')!r} 不在本平台信任列表中",
        )
    try:
        value = base64.b64decode(str(signature.get("value")), validate=True)
        key.verify(value, canonical_bytes(document))
    except (InvalidSignature, ValueError):
        raise SignatureError(
            "the signature does not match the document: it was altered or signed by another key",
            "签名与文档不符：文档被改动或由其他密钥签名",
        ) from None
    return document


def import_export(
    engine: sa.Engine,
    document: Any,
    trusted: list[Ed25519PublicKey],
    *,
    as_person: str | None = None,
) -> dict[str, Any]:
    """Verify, then ingest the records under their own methodologies; a report per methodology.

    Grams are recomputed here; a record whose methodology this registry does not hold is
    refused with UNKNOWN_METHODOLOGY and the rest go on.
    """
    verify_export(document, trusted)
    person = as_person or document["person"]
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    refused: list[dict[str, Any]] = []
    for n, record in enumerate(document["records"], start=1):
        ref = record.get("methodology") if isinstance(record, dict) else None
        if not isinstance(ref, str):
            refused.append({"record": n, "code": "BAD_EVENT", "message": "no methodology"})
            continue
        groups[ref].append((n, record))
    reports: dict[str, Any] = {}
    service = Personal(engine)
    for ref, items in sorted(groups.items()):
        try:
            methodology = get_methodology(ref)
        except DomainError as exc:
            refused.extend(
                {"record": n, "code": "UNKNOWN_METHODOLOGY", "message": exc.message}
                for n, _ in items
            )
            continue
        lines = [
            json.dumps({**_act(record), "person": person}, ensure_ascii=False)
            for _, record in items
        ]
        report = service.ingest_lines(lines, methodology).to_document()
        for entry in report["rejected"]:  # line numbers within the group -> record numbers
            entry["record"] = items[entry.pop("line") - 1][0]
        reports[ref] = report
    return {
        "issuer": document["issuer"],
        "person": person,
        "records": len(document["records"]),
        "by_methodology": reports,
        "refused": refused,
    }


def _act(record: dict[str, Any]) -> dict[str, Any]:
    """The act as first reported: what ingestion reads (grams are recomputed, not copied)."""
    names = ("platform", "event_id", "behaviour", "quantity", "unit", "occurred_at", "evidence")
    return {name: record[name] for name in names if name in record}


def _iso(instant_us: int) -> str:
    moment = datetime.fromtimestamp(instant_us / 1_000_000, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
