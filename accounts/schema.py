"""SQL for what Django's migrations do not declare. Kept stable: migrations import it."""

from __future__ import annotations

_ON_DELETE = ("CASCADE", "SET NULL", "NO ACTION")


def replace_foreign_key(table: str, column: str, target: str, on_delete: str) -> str:
    """Statements that give ``table.column``'s foreign key to ``target`` the database-level
    ``on_delete`` action, keeping Django's deferred checking. Whatever the constraint was
    named, it is replaced by one named after the column."""
    if on_delete not in _ON_DELETE:
        raise ValueError(f"Unknown ON DELETE action {on_delete!r}.")
    return f"""
DO $$
DECLARE name text;
BEGIN
    FOR name IN
        SELECT conname FROM pg_constraint
        WHERE contype = 'f' AND conrelid = '{table}'::regclass
          AND confrelid = '{target}'::regclass
          AND conkey = ARRAY[(SELECT attnum FROM pg_attribute
                              WHERE attrelid = '{table}'::regclass AND attname = '{column}')]
    LOOP
        EXECUTE format('ALTER TABLE {table} DROP CONSTRAINT %I', name);
    END LOOP;
END $$;
ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk
    FOREIGN KEY ({column}) REFERENCES {target} (id) ON DELETE {on_delete}
    DEFERRABLE INITIALLY DEFERRED;
"""  # noqa: S608 - names from migrations, never from input
