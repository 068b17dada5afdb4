from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # After the admin's autodiscovery (django.contrib.admin is ready first): every registered admin, Django's
        # own and django-celery-beat's too.
        from django.contrib import admin

        from tenants.admin import history_answers_alike

        history_answers_alike(admin.site)
