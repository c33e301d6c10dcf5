"""A utility posts signed daily meter readings; the person's saved kWh arrive as grams."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from carbonbook.identity.service import sign
from carbonbook.personal.service import Personal
from tests.api.conftest import World

PATH = "/api/v1/partner/meter-readings"


def post(world: World, key_id: str, secret: str, document: object):
    body = json.dumps(document).encode()
    ts, nonce = str(int(time.time())), uuid.uuid4().hex
    headers = {
        "Content-Type": "application/json",
        "X-Carbonbook-Key": key_id,
        "X-Carbonbook-Timestamp": ts,
        "X-Carbonbook-Nonce": nonce,
        "X-Carbonbook-Signature": sign(secret, "POST", PATH, ts, nonce, body),
    }
    return world.client.post(PATH, content=body, headers=headers)


def test_a_utility_posts_readings_and_the_saving_is_credited(world: World, engine):
    partner, secret = world.identity.register_partner("csg-shenzhen", "南方电网深圳")
    Personal(engine).link_platform("lin", "csg-shenzhen")
    yesterday = datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)
    readings = [
        {"meter_id": "m-9", "person": "lin", "day": str(yesterday - timedelta(days=1)),
         "reading_kwh": "100"},
        {"meter_id": "m-9", "person": "lin", "day": str(yesterday), "reading_kwh": "105"},
    ]  # fmt: skip
    r = post(world, partner.key_id, secret, {"readings": readings})
    assert r.status_code == 200, r.text
    assert r.json()["days"][0]["saved_kwh"] == "3.000"  # 8 - 5
    assert r.json()["people"]["lin"]["grams"] == "1710.90"  # 3 x 570.3
    bad = post(world, partner.key_id, secret, {"rows": []})
    assert bad.status_code == 422
    assert bad.json()["code"] == "BAD_READING"


def test_a_meter_read_for_one_person_is_refused_for_another(world: World, engine):
    partner, secret = world.identity.register_partner("csg-shenzhen", "南方电网深圳")
    Personal(engine).link_platform("lin", "csg-shenzhen")
    Personal(engine).link_platform("xu", "csg-shenzhen")
    yesterday = datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)
    first = {"meter_id": "m-7", "person": "lin", "day": str(yesterday - timedelta(days=2)),
             "reading_kwh": "100"}  # fmt: skip
    assert post(world, partner.key_id, secret, {"readings": [first]}).status_code == 200
    theirs = [
        {"meter_id": "m-7", "person": "xu", "day": str(yesterday - timedelta(days=1)),
         "reading_kwh": "104"},
        {"meter_id": "m-7", "person": "xu", "day": str(yesterday), "reading_kwh": "109"},
    ]  # fmt: skip
    r = post(world, partner.key_id, secret, {"readings": theirs})
    assert r.status_code == 200, r.text
    assert [x["code"] for x in r.json()["rejected"]] == ["METER_BOUND_TO_OTHER"] * 2
    assert r.json()["rejected"][0]["message_zh"]
    assert r.json()["people"] == {}
