"""Migration operations that make PostgreSQL keep each tenant-owned foreign key inside one tenant, also for
writes that skip save() (bulk_create, update()). Django has no composite foreign keys, so these are SQL:

- `TenantUnique("contact")`: UNIQUE (tenant_id, id) on a parent, which a composite key needs to reference;
- `SameTenantKey("interaction", "contact")`: FOREIGN KEY (tenant_id, contact_id) REFERENCES
  contact (tenant_id, id), deferred to commit like Django's own keys (a cascade deletes in any order).

Declarative keys rather than triggers: checked by the index PostgreSQL already uses for the key, and they also
refuse moving a parent to another tenant under its children. They change no model state, and do nothing on
SQLite (the embedded default), where the model's own check (TenantOwned.clean_fields and save) stands alone.
"""

from django.db.migrations.operations.base import Operation


def _on_postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class TenantUnique(Operation):
    reversible = True

    def __init__(self, model_name: str):
        self.model_name = model_name

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name], {}

    def state_forwards(self, app_label, state):
        pass

    def index_name(self, table: str) -> str:
        return f"{table}_tenant_id_id_uniq"[-63:]

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            table = to_state.apps.get_model(app_label, self.model_name)._meta.db_table
            q = schema_editor.quote_name
            schema_editor.execute(
                f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(self.index_name(table))} UNIQUE (tenant_id, id)"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            table = from_state.apps.get_model(app_label, self.model_name)._meta.db_table
            q = schema_editor.quote_name
            schema_editor.execute(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(self.index_name(table))}")

    def describe(self):
        return f"UNIQUE (tenant_id, id) on {self.model_name}"


class SameTenantKey(Operation):
    reversible = True

    def __init__(self, model_name: str, field_name: str):
        self.model_name, self.field_name = model_name, field_name

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name, self.field_name], {}

    def state_forwards(self, app_label, state):
        pass

    def constraint_name(self, table: str, column: str) -> str:
        return f"{table}_{column}_same_tenant"[-63:]

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        field = model._meta.get_field(self.field_name)
        table, parent, q = model._meta.db_table, field.related_model._meta.db_table, schema_editor.quote_name
        schema_editor.execute(
            f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(self.constraint_name(table, field.column))} "
            f"FOREIGN KEY (tenant_id, {q(field.column)}) REFERENCES {q(parent)} (tenant_id, id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            model = from_state.apps.get_model(app_label, self.model_name)
            column = model._meta.get_field(self.field_name).column
            name = self.constraint_name(model._meta.db_table, column)
            schema_editor.execute(
                f"ALTER TABLE {schema_editor.quote_name(model._meta.db_table)} DROP CONSTRAINT {name}"
            )

    def describe(self):
        return f"{self.model_name}.{self.field_name} stays inside its tenant"
