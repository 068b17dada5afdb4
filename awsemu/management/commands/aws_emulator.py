"""`manage.py aws_emulator`: the local AWS emulator in the foreground, for development and benchmarks."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve Bedrock Runtime and Personalize Runtime locally, for boto3's endpoint_url. No database."
    requires_system_checks = []  # it never touches the database or the other apps

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--latency-ms", type=float, default=0.0)
        parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
        parser.add_argument("--throttle-rate", type=float, default=0.0, help="probability of a 429")
        parser.add_argument("--error-rate", type=float, default=0.0, help="probability of a 500 or 503")
        parser.add_argument("--timeout-rate", type=float, default=0.0, help="probability of a 408")
        parser.add_argument("--seed", type=int, default=0, help="seed for the random faults and jitter")

    def handle(self, *args, host, port, seed, **options):
        from awsemu.server import Emulator  # here, so the web process never imports werkzeug's server

        knob_names = ("latency_ms", "latency_jitter_ms", "throttle_rate", "error_rate", "timeout_rate")
        try:
            emulator = Emulator(seed=seed, **{name: options[name] for name in knob_names})
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        url = f"http://{host}:{port}"
        self.stdout.write(
            f"AWS emulator on {url} (Ctrl-C to stop). Point boto3 at it with:\n"
            f"  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={url} AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME={url}\n"
            "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1"
        )
        try:
            emulator.serve_forever(host, port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
