"""The contacts endpoints of the API, one module per resource: lists, contacts,
subscriptions, suppressions, attributes, imports and exports.

Every object is fetched through ``get_for_account_or_404`` or a selector that starts from
``for_account``, so another account's list, contact or suppression answers 404 like a
missing one. Views parse and check access, then call ``contacts.services``; a
ValidationError it raises is answered as a 400 naming the field (accounts/api/errors.py).
"""
