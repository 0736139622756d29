"""Changing an attribute's type: the stored values are read in SQL as a form or a file
would be read in the new type, counted before the confirmation, and converted in one
UPDATE that never drops more values than the customer confirmed."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from contacts import services
from contacts.models import AttributeDefinition, Contact
from tests.factories import World

T = AttributeDefinition.Type

# What people keep in a column: numbers written several ways, dates of several
# countries, yes/no words, and text that is none of these.
CORPUS: list[object] = [
    "12",
    " 12 ",
    "\t7\n",
    "1,5",
    "1.5",
    "1,000.5",
    "1,2,3",
    "-3",
    "+4",
    ".5",
    "1.",
    "1e3",
    "2.5E-2",
    "12.0",
    "0012",
    "abc",
    "12 apples",
    "0x10",
    "",
    "   ",
    "2024-03-01",
    "20240301",
    "2024-0301",
    "2024-3-1",
    "2024-03-01T10:22:33Z",
    "2024-03-01 10:22:33.123456+00",
    "2024-03-01T10:22:33+05:30",
    "2024-03-01T10:22",
    "2024-03-01T10",
    "2024-03-01T25:00",
    "2024-03-01T",
    "2024-02-29",
    "2023-02-29",
    "1900-02-29",
    "2000-02-29",
    "2024-04-31",
    "2024-13-01",
    "0000-01-01",
    "15-01-2024",
    "15.01.2024",
    "15/01/2024",
    "01/15/2024",
    "03/04/2024",
    "31/04/2024",
    "15-01-2024 10:30",
    "15-01-2024 10:30:15.5",
    "15-01-2024T9:05",
    "15/01-2024",
    "1-2-2024",
    "yes",
    "No",
    "TRUE",
    "off",
    "x",
    "oui",
    "maybe",
    "Paris",
    "\tParis \n",
    "Saint-Étienne",
    12,
    -7,
    0,
    1,
    1.5,
    20240301,
    True,
    False,
]


def _as_text(value: object) -> str:
    # A stored boolean reads as the words a form would show for it.
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _expected(type: str, value: object) -> object:
    """What the forms and imports make of the value in ``type``; None when nothing."""
    target = AttributeDefinition(name="v", type=type)
    try:
        return services.clean_attribute(target, _as_text(value))
    except ValidationError:
        return None


@pytest.fixture
def holders(world: World):
    """One contact per value of the corpus, under an attribute of a type none of the
    targets is (the values are stored as they come, as an older version may have)."""

    def make(source_type: str) -> tuple[AttributeDefinition, dict[str, object]]:
        definition = services.attribute_define(
            account=world.account_a, actor=world.alice, name="v", type=source_type
        )
        Contact.objects.bulk_create(
            Contact(account=world.account_a, email=f"c{n}@example.com", attributes={"v": value})
            for n, value in enumerate(CORPUS)
        )
        return definition, {f"c{n}@example.com": value for n, value in enumerate(CORPUS)}

    return make


@pytest.mark.parametrize("type", [T.NUMBER, T.DATE, T.BOOLEAN, T.TEXT])
def test_it_reads_stored_values_in_the_new_type_as_a_form_would(world, holders, type):
    # given contacts holding every value of the corpus
    source = T.TEXT if type != T.TEXT else T.NUMBER
    definition, values = holders(source)
    expected = {email: _expected(type, value) for email, value in values.items()}
    dropped = [email for email, value in expected.items() if value is None]
    assert 0 < len(dropped) < len(CORPUS)  # some of each, for every type

    # when the confirmation page counts, then it counts what the forms would refuse
    plan = services.attribute_retype_plan(definition, type)
    assert (plan.holding, plan.failing) == (len(CORPUS), len(dropped))

    # when the type changes, then each value is what a form would make of it
    services.attribute_retype(
        definition=definition,
        actor=world.alice,
        type=type,
        drop_invalid=True,
        expected_drops=len(dropped),
    )
    stored = dict(Contact.objects.filter(email__in=values).values_list("email", "attributes__v"))
    # (True == 1 in Python: a boolean must stay one, and a number a number)
    mismatches = {
        repr(values[email]): (stored[email], expected[email])
        for email in values
        if (stored[email], isinstance(stored[email], bool))
        != (expected[email], isinstance(expected[email], bool))
    }
    assert mismatches == {}


def test_it_counts_what_a_change_would_drop_without_loading_the_values(world):
    # given 40 contacts, 25 of them holding a word where a number is expected
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    Contact.objects.bulk_create(
        Contact(
            account=world.account_a,
            email=f"c{n}@example.com",
            attributes={"points": "lots" if n < 25 else str(n)},
        )
        for n in range(40)
    )

    # when the confirmation page asks what a change to number does
    with CaptureQueriesContext(connection) as queries:
        plan = services.attribute_retype_plan(definition, T.NUMBER)

    # then the database counts, and only three examples are read
    assert (plan.holding, plan.failing, plan.converting) == (40, 25, 15)
    assert plan.examples == ["lots", "lots", "lots"]
    assert len(queries) == 2
    assert "count(*)" in queries[0]["sql"]
    assert "LIMIT 3" in queries[1]["sql"]


def test_it_converts_the_values_in_one_update_with_the_definition_locked(world):
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    for n in range(5):
        services.contact_create(
            account=world.account_a,
            actor=world.alice,
            email=f"c{n}@example.com",
            attributes={"points": str(n)},
        )

    with CaptureQueriesContext(connection) as queries:
        services.attribute_retype(
            definition=definition, actor=world.alice, type=T.NUMBER, drop_invalid=False
        )

    sql = [q["sql"] for q in queries]
    assert any('FROM "contacts_attributedefinition"' in q and q.endswith("FOR UPDATE") for q in sql)
    converting = [q for q in sql if "UPDATE contacts_contact SET attributes = (attributes" in q]
    assert len(converting) == 1
    # no value was read into Python to be written back
    assert not any(
        q.startswith("SELECT")
        and "contacts_contact" in q
        and "count(" not in q
        and "LIMIT" not in q
        for q in sql
    )
    values = sorted(
        Contact.objects.filter(account=world.account_a, attributes__has_key="points").values_list(
            "attributes__points", flat=True
        )
    )
    assert values == [0, 1, 2, 3, 4]


def test_it_drops_nothing_when_more_values_fail_than_were_confirmed(world):
    # given a text attribute whose one word the customer saw and agreed to drop
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    _contact(world, "a@example.com", "12")
    _contact(world, "b@example.com", "lots")
    # and, meanwhile, another contact's value became a word
    _contact(world, "c@example.com", "plenty")

    # when the change is confirmed for one value
    with pytest.raises(services.AttributeValuesWouldDrop) as refused:
        services.attribute_retype(
            definition=definition,
            actor=world.alice,
            type=T.NUMBER,
            drop_invalid=True,
            expected_drops=1,
        )

    # then it is refused with the new count, and nothing changed
    assert refused.value.failing == 2
    assert "2 values would be dropped now, not 1" in refused.value.messages[0]
    _assert_unchanged(world, definition)


def test_it_undoes_the_update_when_values_changed_between_the_count_and_it(world):
    # given a count taken before a value changed (as if it changed in between)
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    _contact(world, "a@example.com", "12")
    _contact(world, "b@example.com", "lots")
    _contact(world, "c@example.com", "plenty")
    stale = services.RetypePlan(holding=3, failing=1, examples=["lots"])

    # when the UPDATE drops two values where one was confirmed
    with (
        mock.patch.object(services, "attribute_retype_plan", return_value=stale),
        pytest.raises(services.AttributeValuesWouldDrop) as refused,
    ):
        services.attribute_retype(
            definition=definition,
            actor=world.alice,
            type=T.NUMBER,
            drop_invalid=True,
            expected_drops=1,
        )

    # then it is undone, and the error says how many would be dropped now
    assert refused.value.failing == 2
    _assert_unchanged(world, definition)


def test_it_shows_the_confirmation_again_with_the_new_count(bob_client, world):
    # given the confirmation page of a change that drops one value
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    _contact(world, "a@example.com", "12")
    _contact(world, "b@example.com", "lots")
    url = f"/attributes/{definition.pk}/type/"
    page = bob_client.get(url, {"type": "number"}).content.decode()
    assert '<input type="hidden" name="drops" value="1">' in page
    assert "Convert and drop 1 value<" in page

    # when another value becomes a word before bob confirms
    _contact(world, "c@example.com", "plenty")
    response = bob_client.post(url, {"type": "number", "drops": "1"})

    # then the page is shown again with the new count, and nothing changed
    page = response.content.decode()
    assert response.status_code == 400
    assert "2 values would be dropped now, not 1" in page
    assert "2 of 3 stored values cannot be read as the new type" in page
    assert '<input type="hidden" name="drops" value="2">' in page
    assert "Convert and drop 2 values<" in page
    _assert_unchanged(world, definition)

    # when he confirms the new count, the change is made
    response = bob_client.post(url, {"type": "number", "drops": "2"}, follow=True)
    assert "“points” is now of type number; 2 values dropped." in response.content.decode()
    definition.refresh_from_db()
    assert definition.type == T.NUMBER
    assert Contact.objects.get(email="a@example.com").attributes == {"points": 12}


def test_it_drops_nothing_on_a_post_without_the_confirmed_count(bob_client, world):
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    _contact(world, "a@example.com", "12")
    _contact(world, "b@example.com", "lots")

    response = bob_client.post(f"/attributes/{definition.pk}/type/", {"type": "number"})

    assert response.status_code == 400
    assert "1 of 2 stored values cannot be read as number" in response.content.decode()
    _assert_unchanged(world, definition)


def test_it_refuses_a_change_to_the_type_it_has(bob_client, world):
    city = world.extras["attribute"]

    response = bob_client.get(f"/attributes/{city.pk}/type/", {"type": "text"})

    assert response.status_code == 400
    assert "It is already of type text." in response.content.decode()
    assert not AuditEntry.objects.filter(action="attribute.retyped").exists()


def _contact(world: World, email: str, points: str) -> Contact:
    return Contact.objects.create(
        account=world.account_a, email=email, attributes={"points": points}
    )


def _assert_unchanged(world: World, definition: AttributeDefinition) -> None:
    definition.refresh_from_db()
    assert definition.type == T.TEXT
    values = dict(
        Contact.objects.filter(account=world.account_a, attributes__has_key="points").values_list(
            "email", "attributes__points"
        )
    )
    assert all(isinstance(value, str) for value in values.values())
    assert values["b@example.com"] == "lots"
    assert not AuditEntry.objects.filter(action="attribute.retyped").exists()
