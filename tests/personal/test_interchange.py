"""Interchange: a person's records leave as a signed, schema-valid document and come into
another platform with the signature checked, duplicates caught and grams recomputed."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from carbonbook.cli.main import app
from carbonbook.db.engine import make_engine
from carbonbook.db.migrate import upgrade
from carbonbook.db.schema import personal_events
from carbonbook.methodology.registry import get
from carbonbook.personal.interchange import (
    SignatureError,
    UntrustedKeyError,
    canonical_bytes,
    export_person,
    generate_key,
    import_export,
    key_id,
    verify_export,
)
from carbonbook.personal.service import Personal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "personal" / "examples" / "partner-events.jsonl"
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "personal-export.schema.json").read_text())
BJ = get("bj-green-life@2023")


def ride(event_id: str, platform: str = "bike-a", quantity: str = "2.5", at: str = "08:10") -> str:
    return json.dumps(
        {
            "platform": platform,
            "event_id": event_id,
            "person": "chen",
            "behaviour": "shared_bike",
            "quantity": quantity,
            "unit": "km",
            "occurred_at": f"2023-03-06T{at}:00+08:00",
        }
    )


def database(tmp_path: Path, name: str) -> sa.Engine:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    return make_engine(url)


def stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(personal_events)).scalar_one()


@pytest.fixture
def origin(tmp_path: Path) -> sa.Engine:
    """Platform A, where chen's example-file records were credited."""
    engine = database(tmp_path, "a.db")
    Personal(engine).ingest_lines(EXAMPLE.read_text().splitlines(), BJ)
    return engine


def test_an_export_is_schema_valid_signed_and_cites_each_methodology(origin):
    key = generate_key()
    document = export_person(origin, "chen", "platform-a", key)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["records"]
    assert {r["methodology"] for r in document["records"]} == {"bj-green-life@2023"}
    assert verify_export(document, [key.public_key()]) is document
    key.public_key().verify(
        base64.b64decode(document["signature"]["value"]), canonical_bytes(document)
    )


def test_an_import_recomputes_grams_and_a_second_import_credits_nothing(origin, tmp_path):
    key = generate_key()
    document = export_person(origin, "chen", "platform-a", key)
    credited = sum(float(r["reduction_g"]) for r in document["records"])
    other = database(tmp_path, "b.db")
    first = import_export(other, document, [key.public_key()])
    report = first["by_methodology"]["bj-green-life@2023"]
    assert report["accepted"] == len(document["records"])
    assert float(report["people"]["chen"]["grams"]) == credited
    again = import_export(other, document, [key.public_key()])
    assert again["by_methodology"]["bj-green-life@2023"]["duplicates"] == len(document["records"])
    assert stored(other) == len(document["records"])


def test_the_same_ride_already_reported_by_another_platform_is_flagged_not_credited(tmp_path):
    origin = database(tmp_path, "a.db")
    Personal(origin).ingest_lines([ride("bk-1")], BJ)
    key = generate_key()
    document = export_person(origin, "chen", "platform-a", key)
    here = database(tmp_path, "b.db")
    Personal(here).ingest_lines([ride("mx-9", platform="maas-x", at="08:12")], BJ)
    result = import_export(here, document, [key.public_key()])
    assert result["by_methodology"]["bj-green-life@2023"]["cross_platform_duplicates"] == 1


def test_an_altered_record_breaks_the_signature_and_nothing_is_stored(origin, tmp_path):
    key = generate_key()
    document = export_person(origin, "chen", "platform-a", key)
    forged = copy.deepcopy(document)
    forged["records"][0]["quantity"] = "25"
    other = database(tmp_path, "b.db")
    with pytest.raises(SignatureError):
        import_export(other, forged, [key.public_key()])
    assert stored(other) == 0


def test_an_export_signed_by_an_unknown_key_is_refused(origin, tmp_path):
    document = export_person(origin, "chen", "platform-a", generate_key())
    with pytest.raises(UntrustedKeyError):
        import_export(database(tmp_path, "b.db"), document, [generate_key().public_key()])


def test_a_record_under_a_methodology_unknown_here_is_refused_and_the_rest_go_on(origin, tmp_path):
    key = generate_key()
    document = export_person(origin, "chen", "platform-a", key)
    document["records"][0]["methodology"] = "atlantis-green@1999"
    del document["signature"]
    resigned = {
        **document,
        "signature": {
            "alg": "Ed25519",
            "key_id": key_id(key.public_key()),
            "value": base64.b64encode(key.sign(canonical_bytes(document))).decode(),
        },
    }
    result = import_export(database(tmp_path, "b.db"), resigned, [key.public_key()])
    assert [r["code"] for r in result["refused"]] == ["UNKNOWN_METHODOLOGY"]
    assert (
        result["by_methodology"]["bj-green-life@2023"]["accepted"] == len(document["records"]) - 1
    )


def test_the_cli_makes_a_key_exports_and_imports(origin, tmp_path):
    runner = CliRunner()
    url_a = str(origin.url)
    url_b = f"sqlite:///{tmp_path / 'b.db'}"
    key = tmp_path / "platform-a.pem"
    assert runner.invoke(app, ["personal", "keygen", str(key)]).exit_code == 0
    assert runner.invoke(app, ["personal", "keygen", str(key)]).exit_code == 3  # never overwrite
    out = tmp_path / "chen.json"
    done = runner.invoke(
        app,
        ["personal", "export", "chen", "--key", str(key), "--out", str(out), "--database", url_a],
    )
    assert done.exit_code == 0, done.output
    imported = runner.invoke(
        app,
        ["personal", "import", str(out), "--trust", str(key.with_suffix(".pub.pem")),
         "--database", url_b, "--json"],
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["by_methodology"]["bj-green-life@2023"]["accepted"] > 0
    stranger = tmp_path / "stranger.pem"
    runner.invoke(app, ["personal", "keygen", str(stranger)])
    refused = runner.invoke(
        app,
        ["personal", "import", str(out), "--trust", str(stranger.with_suffix(".pub.pem")),
         "--database", url_b],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "UNTRUSTED_KEY" in refused.output
