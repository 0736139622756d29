"""Imports that map columns to tags: names split as other tools write them, tags made
when new, put only on the contacts the file imported, a bad name left out with a warning."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEntry
from contacts import selectors, tagging
from contacts.importing.jobs import import_configure, import_upload, run_import
from contacts.importing.mapping import mapping_problems
from contacts.models import Contact, ContactTag, ImportReject


def _tag_names(contact: Contact) -> list[str]:
    return sorted(
        ContactTag.objects.filter(contact=contact).values_list("tag__name", flat=True),
        key=str.lower,
    )


def test_it_imports_columns_of_tags_creating_them_as_needed(world):
    # given a tag VIP already, and a file with two columns of tag names, one of them too
    # long, an address already a contact and one that is suppressed
    vip = tagging.tag_create(account=world.account_a, actor=None, name="VIP")
    too_long = "x" * 101
    content = (
        "email,Tags,Groups\n"
        'ann@example.com,"vip; Webinar 2026",alpha\n'
        'bob@example.com,"VIP, ",\n'
        "erin@alpha.test,Speaker,\n"
        "blocked@alpha.test,vip,\n"
        f"carl@example.com,{too_long},\n"
    ).encode()
    job = import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=world.extras["list"],
        upload=SimpleUploadedFile("people.csv", content, content_type="text/csv"),
    )
    assert job.mapping["1"] == "tags"  # suggested from the header
    mapping = {"0": "email", "1": "tags", "2": "tags"}
    [problem] = mapping_problems(job, mapping)
    assert "a tag name longer than 100 characters in column Tags" in problem

    # when it is imported with both columns as tags
    import_configure(
        job=job,
        actor=world.alice,
        mapping=mapping,
        legal_basis="consent",
        consent_text="Signed up at the webinar",
        update_existing=False,
    )
    job = run_import(job.pk)

    # then the names the account had no tag of are created, the rest found whatever
    # their case, and each imported contact has the tags of their row
    assert (job.status, job.created_count, job.suppressed_count) == ("done", 3, 1)
    assert job.warning_count == 1
    names = set(selectors.tags(world.account_a).values_list("name", flat=True))
    assert names == {"Alpha Sentinel VIP", "VIP", "Webinar 2026", "alpha", "Speaker"}

    def tags_of(email: str) -> list[str]:
        return _tag_names(Contact.objects.get(account=world.account_a, email=email))

    assert tags_of("ann@example.com") == ["alpha", "VIP", "Webinar 2026"]
    assert tags_of("bob@example.com") == ["VIP"]
    assert tags_of("erin@alpha.test") == ["Alpha Sentinel VIP", "Speaker"]
    assert tags_of("carl@example.com") == []
    assert not Contact.objects.filter(email="blocked@alpha.test").exists()
    assert ContactTag.objects.filter(tag=vip).count() == 2
    warning = ImportReject.objects.get(job=job)
    assert (warning.column, warning.warning) == ("Tags", True)
    assert warning.reason == "a tag name longer than 100 characters: left out"
    entry = AuditEntry.objects.get(action="contacts.imported")
    assert (entry.detail["tags_created"], entry.detail["tagged"]) == (3, 5)


def test_it_imports_a_file_without_tags_as_before(world):
    # a file without a tags column imports as before: no tag made, none in the audit
    job = import_upload(
        account=world.account_a,
        actor=world.alice,
        contact_list=world.extras["list"],
        upload=SimpleUploadedFile(
            "people.csv", b"email\nzoe@example.com\n", content_type="text/csv"
        ),
    )
    import_configure(
        job=job,
        actor=world.alice,
        mapping=job.mapping,
        legal_basis="consent",
        consent_text="Signed up",
        update_existing=False,
    )
    run_import(job.pk)

    assert selectors.tags(world.account_a).count() == 1
    assert "tagged" not in AuditEntry.objects.get(action="contacts.imported").detail
