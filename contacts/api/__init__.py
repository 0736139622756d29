"""The contacts endpoints of the API: lists, contacts, subscriptions, suppressions and
exports. Views parse and check access, then call ``contacts.services``."""
