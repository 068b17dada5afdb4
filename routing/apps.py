from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save


class RoutingConfig(AppConfig):
    name = "routing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from routing.catalog import invalidate
        from routing.models import DynamicRoute, ModelEntry, Plan, PlanRoute, ReferencePrompt
        from routing.seed import seed_if_empty

        def changed(sender, **kwargs):
            invalidate()  # this process reads the change at once (inside its transaction)
            transaction.on_commit(invalidate)  # and again once it is committed, or forgets a rolled-back copy

        for model in (ModelEntry, Plan, PlanRoute, DynamicRoute, ReferencePrompt):
            post_save.connect(changed, sender=model, dispatch_uid=f"routing-cache-save-{model.__name__}")
            post_delete.connect(changed, sender=model, dispatch_uid=f"routing-cache-delete-{model.__name__}")
        post_migrate.connect(seed_if_empty, sender=self, dispatch_uid="routing-seed-if-empty")
