"""Trading accounts: one per entity, opened after a KYC review by someone other than the
applicant; identifiers checked by their check character; only approved accounts trade, and
individuals only where a market admits them. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from carbonbook.errors import ConflictError, PermissionDeniedError
from carbonbook.exchange.errors import OrderRefusedError
from carbonbook.exchange.markets import market
from carbonbook.exchange.members import (
    ApplicationRefusedError,
    Members,
    credit_code_check,
    is_credit_code,
    is_resident_id,
)
from tests.exchange.accounts import credit_code

# Published examples: a unified social credit code and the GB 11643 specimen number.
KNOWN_CODE = "91350100M000100Y43"
SPECIMEN_ID = "11010519491231002X"


def test_check_characters_follow_the_standards():
    assert is_credit_code(KNOWN_CODE)
    assert not is_credit_code(KNOWN_CODE[:-1] + "4")
    assert not is_credit_code("91350100M000100Y4")  # 17 characters
    assert not is_credit_code("91350100M000100I43")  # I is not in the alphabet
    assert is_resident_id(SPECIMEN_ID)
    assert not is_resident_id(SPECIMEN_ID[:-1] + "1")


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
def test_one_changed_character_is_always_caught(body: str):
    code = body + credit_code_check(body)
    assert is_credit_code(code)
    for i in range(17):
        other = "0" if code[i] != "0" else "1"
        assert not is_credit_code(code[:i] + other + code[i + 1 :])


def _apply(members: Members, owner: str = "ent:steel", n: int = 1, **kw: str):
    args = {
        "owner": owner,
        "kind": "legal_person",
        "entity_name": "示例钢铁有限公司",
        "identifier": credit_code(n),
        "by": "steel",
    }
    return members.apply(**{**args, **kw})


def test_an_application_is_reviewed_by_someone_else_then_admits(engine: sa.Engine):
    members = Members(engine)
    applied = _apply(members)
    assert (applied.state, applied.identifier) == ("applied", credit_code(1))
    with engine.connect() as conn, pytest.raises(OrderRefusedError) as refused:
        members.admit(conn, "ent:steel", market("national"))
    assert refused.value.code == "NO_TRADING_ACCOUNT"
    with pytest.raises(PermissionDeniedError):
        members.review(applied.id, approve=True, reason=None, by="steel")
    approved = members.review(applied.id, approve=True, reason=None, by="kyc-officer")
    assert (approved.state, approved.reviewed_by) == ("approved", "kyc-officer")
    with engine.connect() as conn:
        members.admit(conn, "ent:steel", market("national"))  # no error
    with pytest.raises(ConflictError):
        members.review(applied.id, approve=False, reason="again", by="kyc-officer")


def test_one_account_per_entity(engine: sa.Engine):
    members = Members(engine)
    _apply(members)
    with pytest.raises(ApplicationRefusedError) as twice:
        _apply(members, n=2)
    assert twice.value.code == "ACCOUNT_EXISTS"
    with pytest.raises(ApplicationRefusedError) as same_code:
        _apply(members, owner="ent:other")  # the same credit code under another login
    assert same_code.value.code == "ACCOUNT_EXISTS"


def test_a_rejection_says_why_and_the_entity_may_apply_again(engine: sa.Engine):
    members = Members(engine)
    applied = _apply(members)
    with pytest.raises(ApplicationRefusedError) as silent:
        members.review(applied.id, approve=False, reason="  ", by="kyc")
    assert silent.value.code == "REASON_REQUIRED"
    rejected = members.review(applied.id, approve=False, reason="营业执照已过期", by="kyc")
    assert (rejected.state, rejected.reason) == ("rejected", "营业执照已过期")
    again = _apply(members, entity_name="示例钢铁有限公司 ")
    assert (again.id, again.state, again.reason) == (applied.id, "applied", None)


@pytest.mark.parametrize(
    ("kind", "identifier", "code"),
    [
        ("legal_person", "91350100M000100Y44", "BAD_CREDIT_CODE"),
        ("individual", "110105194912310021", "BAD_ID_NUMBER"),
        ("trust", KNOWN_CODE, "BAD_KIND"),
    ],
)
def test_bad_identifiers_are_refused_and_nothing_is_stored(
    engine: sa.Engine, kind: str, identifier: str, code: str
):
    members = Members(engine)
    with pytest.raises(ApplicationRefusedError) as refused:
        _apply(members, kind=kind, identifier=identifier)
    assert refused.value.code == code
    assert refused.value.message_zh != refused.value.message
    assert members.account_of("ent:steel") is None


def test_an_individual_is_masked_and_not_admitted_where_the_market_says_so(engine: sa.Engine):
    members = Members(engine)
    person = members.apply(
        owner="person:wang",
        kind="individual",
        entity_name="王先生",
        identifier=SPECIMEN_ID.lower(),
        by="wang",
    )
    assert person.identifier == "*" * 14 + "002X"
    assert SPECIMEN_ID not in repr(dataclasses.asdict(person))
    members.review(person.id, approve=True, reason=None, by="kyc")
    with engine.connect() as conn, pytest.raises(OrderRefusedError) as refused:
        members.admit(conn, "person:wang", market("national"))
    assert refused.value.code == "INDIVIDUALS_NOT_ADMITTED"
    open_to_all = dataclasses.replace(market("national"), individuals=True)
    with engine.connect() as conn:
        members.admit(conn, "person:wang", open_to_all)


def test_a_colleague_of_the_applicant_cannot_review_for_the_same_entity(engine: sa.Engine):
    """Issue 16: "someone other than the applicant" is another entity, not another login."""
    from carbonbook.identity.model import Role
    from carbonbook.identity.service import Identity

    identity = Identity(engine)
    identity.register("steel", "correct horse battery", Role.ENTERPRISE, owner="ent:steel")
    identity.register("steel2", "correct horse battery", Role.ENTERPRISE, owner="ent:steel")
    members = Members(engine)
    account = _apply(members)
    with pytest.raises(PermissionDeniedError):
        members.review(account.id, approve=True, reason=None, by="steel2")
    assert members.account(account.id).state == "applied"


def test_a_regulator_or_the_operator_never_opens_a_trading_account(engine: sa.Engine):
    from carbonbook.identity.model import Role
    from carbonbook.identity.service import Identity

    identity = Identity(engine)
    identity.register("mee", "correct horse battery", Role.REGULATOR, owner="regulator")
    identity.register("desk", "correct horse battery", Role.OPERATOR, owner="exchange:operator")
    members = Members(engine)
    for owner, by in (("regulator", "mee"), ("exchange:operator", "desk")):
        with pytest.raises(ApplicationRefusedError) as refused:
            _apply(members, owner=owner, by=by)
        assert refused.value.code == "ROLE_MAY_NOT_TRADE"
        assert members.account_of(owner) is None


def test_the_entity_name_comes_from_its_kyc_record(engine: sa.Engine):
    """Issue 16: the name was free text, so a second applicant took another firm's name (and
    with it the firm's same-name bank account)."""
    members = Members(engine)
    firm = _apply(members)
    members.review(firm.id, approve=True, reason=None, by="kyc-officer")
    # Another applicant under the firm's approved name, with its own credit code.
    with pytest.raises(ApplicationRefusedError) as borrowed:
        _apply(members, owner="ent:impostor", n=2, by="impostor")
    assert borrowed.value.code == "ENTITY_NAME_MISMATCH"
    assert borrowed.value.message_zh
    # The firm's credit code under another name.
    with pytest.raises(ApplicationRefusedError) as renamed:
        _apply(members, owner="ent:impostor", entity_name="别的公司", by="impostor")
    assert renamed.value.code == "ENTITY_NAME_MISMATCH"
    assert members.account_of("ent:impostor") is None
    # The firm's account shows its record's name.
    account = members.account_of("ent:steel")
    assert account is not None
    assert account.entity_name == "示例钢铁有限公司"


def test_two_waiting_applications_under_one_name_approve_only_the_first(engine: sa.Engine):
    members = Members(engine)
    first = _apply(members)
    second = _apply(members, owner="ent:impostor", n=2, by="impostor")  # not yet approved
    members.review(first.id, approve=True, reason=None, by="kyc-officer")
    with pytest.raises(ApplicationRefusedError) as refused:
        members.review(second.id, approve=True, reason=None, by="kyc-officer")
    assert refused.value.code == "ENTITY_NAME_MISMATCH"
    assert members.account(second.id).state == "applied"


def test_a_rejected_application_may_correct_its_name(engine: sa.Engine):
    members = Members(engine)
    applied = _apply(members, entity_name="示例钢铁公司")
    members.review(applied.id, approve=False, reason="名称与营业执照不符", by="kyc")
    again = _apply(members)  # the same code, the name on the licence
    approved = members.review(again.id, approve=True, reason=None, by="kyc")
    assert approved.entity_name == "示例钢铁有限公司"


def test_individuals_may_share_a_name(engine: sa.Engine):
    members = Members(engine)
    for owner, number in (("person:a", SPECIMEN_ID), ("person:b", "110105194912310038")):
        account = members.apply(
            owner=owner, kind="individual", entity_name="王伟", identifier=number, by=owner
        )
        members.review(account.id, approve=True, reason=None, by="kyc")
    account = members.account_of("person:b")
    assert account is not None
    assert account.approved
