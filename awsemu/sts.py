"""STS `AssumeRole` and `GetCallerIdentity` (query protocol, XML replies), and the session credentials they
issue, so the server can tell which account a signed request acts in and refuse unknown session tokens.

A role is assumable only once registered (`add_role`), with the external id its trust policy demands.
"""

import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from awsemu.wire import DEFAULT_ACCOUNT, STS_NAMESPACE, AwsError, Caller

FAULTS = {
    "throttle": ("Throttling", 400, "Rate exceeded"),
    "timeout": ("RequestTimeout", 408, "Request timed out."),
    "internal": ("InternalFailure", 500, "An internal error occurred."),
    "unavailable": ("ServiceUnavailable", 503, "The service is unavailable."),
}
ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
MIN_SECONDS, MAX_SECONDS, DEFAULT_SECONDS = 900, 43200, 3600


@dataclass(frozen=True)
class Session:
    secret_key: str
    token: str
    expires: float  # time.time()
    account: str
    arn: str


class StsStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._roles: dict[str, str | None] = {}  # role ARN -> the external id it requires (None: none)
        self._sessions: dict[str, Session] = {}  # access key id -> session

    def clear(self) -> None:
        with self._lock:
            self._roles.clear()
            self._sessions.clear()

    def add_role(self, role_arn: str, external_id: str | None = None) -> None:
        if not ROLE_ARN.match(role_arn or ""):
            raise ValueError(f"not an IAM role ARN: {role_arn!r}")
        with self._lock:
            self._roles[role_arn] = external_id

    def operation_of(self, body: bytes) -> tuple[str, dict]:
        form = {key: values[0] for key, values in parse_qs(body.decode(errors="replace")).items()}
        return form.get("Action", ""), form

    def assume_role(self, form: dict, caller: Caller) -> str:
        role_arn, name = form.get("RoleArn", ""), form.get("RoleSessionName", "")
        match = ROLE_ARN.match(role_arn)
        if not match:
            raise AwsError("ValidationError", 400, f"{role_arn!r} is not a valid role ARN.")
        if not SESSION_NAME.match(name):
            raise AwsError("ValidationError", 400, "RoleSessionName must be 2-64 characters of [\\w+=,.@-].")
        seconds = int(form.get("DurationSeconds") or DEFAULT_SECONDS)
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise AwsError("ValidationError", 400, f"DurationSeconds must be between {MIN_SECONDS} and {MAX_SECONDS}.")
        with self._lock:
            known = role_arn in self._roles
            required = self._roles.get(role_arn)
        if not known or (required is not None and form.get("ExternalId") != required):
            who = self.arn_of(caller)
            raise AwsError("AccessDenied", 403, f"User: {who} is not authorized to perform: sts:AssumeRole on "
                           f"resource: {role_arn}")  # fmt: skip
        account, role = match.groups()
        key = "ASIA" + secrets.token_hex(8).upper()
        session = Session(secrets.token_urlsafe(30), secrets.token_urlsafe(60), time.time() + seconds, account,
                          f"arn:aws:sts::{account}:assumed-role/{role}/{name}")  # fmt: skip
        with self._lock:
            self._sessions[key] = session
        expires = datetime.fromtimestamp(session.expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return _reply("AssumeRole", (
            f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{session.secret_key}</SecretAccessKey>"
            f"<SessionToken>{session.token}</SessionToken><Expiration>{expires}</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROA{secrets.token_hex(8).upper()}:{escape(name)}</AssumedRoleId>"
            f"<Arn>{escape(session.arn)}</Arn></AssumedRoleUser>"
        ))  # fmt: skip

    def get_caller_identity(self, caller: Caller) -> str:
        account = self.account_of(caller)
        return _reply("GetCallerIdentity", f"<UserId>{escape(caller.access_key or 'anonymous')}</UserId>"
                      f"<Account>{account}</Account><Arn>{escape(self.arn_of(caller))}</Arn>")  # fmt: skip

    def check(self, caller: Caller) -> None:
        """Refuse a request signed with session credentials this STS never issued, or that have expired."""
        if not caller.access_key.startswith("ASIA") or not caller.session_token:
            return
        with self._lock:
            session = self._sessions.get(caller.access_key)
        if session is None or session.token != caller.session_token:
            raise AwsError("UnrecognizedClientException", 403, "The security token included in the request is invalid.")
        if session.expires <= time.time():
            raise AwsError("ExpiredTokenException", 403, "The security token included in the request is expired.")

    def account_of(self, caller: Caller) -> str:
        with self._lock:
            session = self._sessions.get(caller.access_key)
        return session.account if session else DEFAULT_ACCOUNT

    def arn_of(self, caller: Caller) -> str:
        with self._lock:
            session = self._sessions.get(caller.access_key)
        return session.arn if session else f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/awsemu"


def _reply(action: str, result: str) -> str:
    return (
        f'<{action}Response xmlns="{STS_NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{secrets.token_hex(16)}</RequestId></ResponseMetadata></{action}Response>"
    )
