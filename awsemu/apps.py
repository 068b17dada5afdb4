"""Django app entry for the emulator, only so `manage.py aws_emulator` exists; it has no models."""

from django.apps import AppConfig


class AwsEmuConfig(AppConfig):
    name = "awsemu"
    verbose_name = "Local AWS emulator"
