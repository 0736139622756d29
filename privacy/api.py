"""The privacy endpoints of the API: erasing a contact, exporting what is held on one."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from contacts.api.serializers import ContactExportSerializer, ErasedSerializer
from contacts.models import Contact
from privacy import data_requests, erasure

WRITE = Perm.EDIT_CONTENT


class ContactEraseView(AccountAPIMixin, APIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        operation_id="contacts_erase",
        request=None,
        responses={200: ErasedSerializer},
        description="Erase the contact for good, as the person may ask (GDPR Art. 17): the "
        "contact, their subscriptions and consent proof, the stored copies of their "
        "messages and their events go; the messages still count in their campaigns, linked "
        "to no one. A hash of the address stays on the suppression list (reason `erasure`), "
        "so no import, form or API call can mail it again.",
    )
    def post(self, request: Request, contact_id: int) -> Response:
        contact = get_for_account_or_404(Contact, self.account, pk=contact_id)
        try:
            erased = erasure.erase_contact(
                contact=contact, actor=self.actor, reason=erasure.Reason.CUSTOMER
            )
        except Contact.DoesNotExist:  # erased by another request a moment ago
            raise Http404("No contact found.") from None
        return Response(ErasedSerializer(erased).data)


class ContactDataExportView(AccountAPIMixin, APIView):
    required_perms = {"GET": Perm.EXPORT}

    @extend_schema(
        operation_id="contacts_data_export",
        responses=ContactExportSerializer,
        description="Everything held on one contact, as the person would get it from an "
        "access request: fields and attributes, subscriptions with their consent proof, the "
        "messages sent (campaign and dates) and their events. Recorded in the activity log.",
    )
    def get(self, request: Request, contact_id: int) -> Response:
        contact = get_for_account_or_404(Contact, self.account, pk=contact_id)
        data = data_requests.contact_export(contact=contact, actor=self.actor)
        return Response(ContactExportSerializer(data).data)
