"""`manage.py aws_emulator`: the local AWS emulator in the foreground, for development and benchmarks."""

from django.core.management.base import BaseCommand, CommandError

VARIABLES = ("BEDROCK_RUNTIME", "BEDROCK", "PERSONALIZE_RUNTIME", "PERSONALIZE", "S3", "STS")


class Command(BaseCommand):
    help = "Serve Bedrock, Personalize, S3 and STS locally, for boto3's endpoint_url. No database."
    requires_system_checks = []  # it never touches the database or the other apps

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--latency-ms", type=float, default=0.0)
        parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
        parser.add_argument("--throttle-rate", type=float, default=0.0, help="probability of a 429")
        parser.add_argument("--error-rate", type=float, default=0.0, help="probability of a 500 or 503")
        parser.add_argument("--timeout-rate", type=float, default=0.0, help="probability of a 408")
        parser.add_argument("--tokens-per-minute", type=int, default=0, help="Bedrock quota per model; 0: none")
        parser.add_argument("--status-step-ms", type=float, default=1000.0,
                            help="time in each status of a Personalize resource or batch job")  # fmt: skip
        parser.add_argument("--bucket", action="append", default=[], help="an S3 bucket to create (repeatable)")
        parser.add_argument("--role", action="append", default=[], metavar="ARN[:EXTERNAL_ID]",
                            help="an IAM role STS may assume (repeatable)")  # fmt: skip
        parser.add_argument("--seed", type=int, default=0, help="seed for the random faults and jitter")

    def handle(self, *args, host, port, seed, bucket, role, **options):
        from awsemu.server import Emulator  # here, so the web process never imports werkzeug's server
        from awsemu.wire import AwsError

        knob_names = ("latency_ms", "latency_jitter_ms", "throttle_rate", "error_rate", "timeout_rate",
                      "tokens_per_minute", "status_step_ms")  # fmt: skip
        try:
            emulator = Emulator(seed=seed, **{name: options[name] for name in knob_names})
            for name in bucket:
                emulator.s3.create_bucket(name, "us-east-1")
            for entry in role:
                emulator.sts.add_role(*_role(entry))
        except (ValueError, AwsError) as exc:
            raise CommandError(str(exc)) from exc
        url = f"http://{host}:{port}"
        exports = " ".join(f"AWS_ENDPOINT_URL_{name}={url}" for name in VARIABLES)
        self.stdout.write(
            f"AWS emulator on {url} (Ctrl-C to stop). Point boto3 at it with:\n"
            f"  export {exports}\n"
            "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1"
        )
        try:
            emulator.serve_forever(host, port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc


def _role(entry: str) -> tuple[str, str | None]:
    """("arn:aws:iam::…:role/Name", "external-id" or None) from "arn:aws:iam::…:role/Name[:external-id]"."""
    head, marker, tail = entry.partition(":role/")
    name, _, external_id = tail.partition(":")  # role names cannot contain a colon
    return head + marker + name, external_id or None
