"""CSV imports into a list, at a million rows, in memory that stays flat.

Guarantees:
- A file-level problem (empty, binary, unreadable encoding, over the size limit, no email
  column) is refused at upload, before any data changes.
- The file is read once, as a stream: each row is checked in Python (email, declared
  attribute types) and the good ones go to a temporary staging table through COPY; the
  rejects go to a file on disk. Nothing grows with the number of rows but the database.
- Only the email decides whether a row is imported (and a NUL character, which the
  database cannot store): a bad optional value (a name, an attribute, the consent time
  or IP) is left out of the row with a warning, kept beside the rejects.
- The merge is set-based SQL in the same transaction as the staging: duplicates within the
  file are kept once, existing contacts are updated only if the customer asked, addresses
  on the account's or the platform's suppression list are never added, and people who
  unsubscribed from the list are never subscribed again. A crash or a cancel before the
  commit leaves the database as it was.
- Nothing an import creates survives it when it saves no contact: the attributes declared
  for its mapping are removed again if it fails, is cancelled or rejects every row.
- The uploaded file is deleted when the import ends, whatever the outcome, but for an
  import that rejected every row: its file waits (as a new upload, swept after a day) for
  the customer to fix the mapping.

The stages, one module each:
- ``sniff``: the uploaded file read for its shape (encoding, delimiter, header, first
  rows), another tool's export recognized, a column mapping suggested;
- ``mapping``: the targets a column can go to, what each keeps of a cell, and the
  checks of the customer's mapping;
- ``attributes``: the attributes an import maps to, locked while it runs, and those it
  declared, removed again when it saves nothing;
- ``stage``: the file read once and its good rows COPYed to a staging table;
- ``merge``: the staged rows merged into contacts and subscriptions;
- ``report``: the progress, the outcome's counts and the rejects;
- ``jobs``: the import's life, from upload to the end of its run, and the sweep of
  imports nobody will finish.

The pages, the API and the tasks call the names below, from this package; everything
else (and any test of a stage) imports from the module that holds it:
``import_upload``, ``import_configure``, ``import_cancel``, ``run_import`` and
``imports_sweep`` (jobs); ``preview_rows``, ``column_notes`` and ``recognize_export``
(sniff); ``check_mapping`` and ``mapping_problems`` (mapping); ``progress_of`` and
``rejects_csv`` (report).
"""

from contacts.importing.jobs import (
    import_cancel,
    import_configure,
    import_upload,
    imports_sweep,
    run_import,
)
from contacts.importing.mapping import check_mapping, mapping_problems
from contacts.importing.report import progress_of, rejects_csv
from contacts.importing.sniff import column_notes, preview_rows, recognize_export

__all__ = [
    "check_mapping",
    "column_notes",
    "import_cancel",
    "import_configure",
    "import_upload",
    "imports_sweep",
    "mapping_problems",
    "preview_rows",
    "progress_of",
    "recognize_export",
    "rejects_csv",
    "run_import",
]
