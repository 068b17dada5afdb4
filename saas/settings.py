"""Django settings, read from the environment. Unset variables give the embedded defaults
(SQLite, in-process tasks, the local model, emails written to var/outbox)."""

from pathlib import Path

from saas.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_json,
    env_list,
    env_rate,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY") or ("dev-only-insecure-key" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is false")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
SITE_URL = env_str("SITE_URL", "http://localhost:8000" if DEBUG else "").rstrip("/")
if not SITE_URL:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SITE_URL must be set when DJANGO_DEBUG is false: the public address of this site, e.g. "
        "https://mail.example.com, which the unsubscribe links in every email point at"
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's scripts and styles, served from our static files (no CDN)
    "django_celery_beat",
    "tenants",
    "datasets",
    "recommendations",
    "routing",
    "campaigns",
    "webhooks",
    "idempotency",
    "awsemu",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves STATIC_ROOT (the admin's CSS and scripts) from the app itself: gunicorn serves no files.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.AdminTenantScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "saas.urls"
WSGI_APPLICATION = "saas.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": database_from_url(env_str("DATABASE_URL"), base_dir=BASE_DIR)}
# Persistent connections: a request reuses its process's connection instead of opening one (a PostgreSQL backend
# started per request), checked before reuse; 0 closes each at the end of its request, as Django's default does.
DATABASES["default"].update(CONN_MAX_AGE=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0), CONN_HEALTH_CHECKS=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_TZ = True
USE_I18N = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))  # filled by collectstatic (the image build)
# Compressed copies made at collectstatic; no hashed names, so pages render before collectstatic has run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Uploads larger than this are refused with a clear error instead of exhausting a worker.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024, minimum=1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.auth.HasTenantRole"],
    "DEFAULT_PAGINATION_CLASS": "saas.pagination.CursorPages",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "saas.schema.ApiAutoSchema",
    "UNAUTHENTICATED_USER": None,
    # JSON only: callers hold API keys, not browser sessions, so the browsable HTML API has no user to serve.
    "DEFAULT_RENDERER_CLASSES": ["saas.renderers.ApiJSONRenderer"],
    "EXCEPTION_HANDLER": "saas.api_errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["saas.throttling.PlanRateThrottle"],
}

# API requests per tenant (all its keys together) by plan, counted in Redis by every web process: `N/period`
# (s, min, hour, day) or `off`. A plan named here by neither gets Basic's rate.
API_RATE_LIMITS = {
    "basic": env_rate("API_RATE_LIMIT_BASIC", "600/min"),
    "pro": env_rate("API_RATE_LIMIT_PRO", "3000/min"),
}
# The longest a web request may run: gunicorn reads it as its worker timeout (gunicorn.conf.py) and kills a sync
# worker silent for longer, so no request outlives it.
REQUEST_TIMEOUT_SECONDS = env_int("REQUEST_TIMEOUT_SECONDS", 30, minimum=1)
# List pages render rows without DRF's per-field machinery, to the same output (saas/rows.py); off: the DRF way.
API_FAST_ROWS = env_bool("API_FAST_ROWS", True)
# Idempotency-Key on POSTs (idempotency/claims.py): how long a key and its stored answer are kept, and how long a
# request may hold a key before a retry may take it over. The lease outlasts the request timeout (twice it by
# default), so a key is only taken over from a request the server has already killed.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24, minimum=1)
IDEMPOTENCY_LEASE_SECONDS = env_int(
    "IDEMPOTENCY_LEASE_SECONDS", 2 * REQUEST_TIMEOUT_SECONDS, minimum=REQUEST_TIMEOUT_SECONDS + 1
)

# The OpenAPI 3 document at /api/schema/ and Swagger UI at /api/docs/ (saas/schema.py adds the error answers).
SPECTACULAR_SETTINGS = {
    "TITLE": "Marketing email API",
    "DESCRIPTION": (
        "Load contacts, items and interactions, launch campaigns, review and send the emails they write.\n\n"
        "**Authentication**: an API key, as `Authorization: Bearer <key>` or `X-API-Key: <key>`; it belongs to one "
        "tenant and one role (reviewers read and review, marketers and owners also change data and run campaigns).\n\n"
        '**Errors** always have one shape, `{"error": {"code", "message", "fields"?, "details"?}}` '
        "(the `Error` schema): `fields` names each invalid input, `details` adds what a client can act on.\n\n"
        "**Lists** page by cursor: follow `next` (and `previous`); `page_size` is 1 to 1000 (default 100).\n\n"
        "**Retries**: send an `Idempotency-Key` header (1 to 255 printable characters, e.g. a UUID) with any POST. "
        "For 24 hours the same key with the same request (method, path, body) gets the first answer again, marked "
        "`Idempotent-Replayed: true`, and does nothing twice; the same key with another request is a 409 "
        "`idempotency_key_reused`, and while the first request is still running a 409 `idempotency_key_in_flight` "
        "with `Retry-After`. Answers 5xx, 409 and 429 are not kept: a retry with the key runs again. Keys are your "
        "account's own.\n\n"
        "**Rate**: requests per account (all its keys together) are limited by plan (Basic lower than Pro); over it, "
        "a 429 `throttled` with `Retry-After` (seconds) and the limit and window in `details`.\n\n"
        "**The whole job, step by step**:\n"
        "1. Load your data: `PUT /api/v1/items/`, `PUT /api/v1/contacts/` and `PUT /api/v1/interactions/` take "
        '`{"rows": [...]}`, 1 to 10,000 rows, matched by `external_id`: new rows are created, changed ones updated. '
        "The answer is a 207 with counts and per-row `errors` (by index) while the good rows are kept. An upsert "
        "never resubscribes anyone: consent changes only through `unsubscribe`/`resubscribe` on a contact.\n"
        "2. Register a webhook (`POST /api/v1/webhooks/`) for `run.completed`, `email.generated`, `email.approved`, "
        "`email.sent`, `email.failed` or `contact.unsubscribed`; keep the secret the answer shows once.\n"
        "3. Create a campaign (`POST /api/v1/campaigns/`), try it on one contact with `preview`, then `launch` it "
        "(or `schedule` it; `pause`, `resume`, `cancel`). Follow the run at `GET /api/v1/runs/{id}/`, or wait for "
        "`run.completed`.\n"
        "4. Review: `GET /api/v1/emails/?run={id}&status=draft`, then `approve`, `reject`, `edit` or `regenerate` "
        "(202, written again in the background). `test_send` mails a draft to you and changes nothing.\n"
        "5. Send: approved emails go out on the campaign's sending window, or one now with `send` (202); never to "
        "a suppressed address (`/api/v1/suppressions/`), and never twice. Costs are at `GET /api/v1/usage/`, every "
        "decision at `GET /api/v1/audit-log/`.\n\n"
        "**Webhooks** are signed the Standard Webhooks way: headers `webhook-id` (the same on every retry: keep the "
        "ones you handled), `webhook-timestamp` and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of "
        "`id.timestamp.body` with your secret, without its `whsec_` prefix, base64-decoded); the `svix` or "
        "`standardwebhooks` libraries verify them. Answer 2xx within 10 s. A failure is retried with backoff and "
        "jitter for about 10 hours; an endpoint failing for 5 days is disabled and your owners are told. "
        "Deliveries are at least once; each is logged at `GET /api/v1/webhooks/{id}/deliveries/`."
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "ENUM_NAME_OVERRIDES": {
        "ErrorCodeEnum": "saas.schema.ERROR_CODE_CHOICES",
        "ReportKindEnum": "campaigns.models.ReportKind.choices",
        "WebhookEventTypeEnum": "webhooks.models.EventType.choices",
        "DeliveryStatusEnum": "webhooks.models.DeliveryStatus.choices",
        "EmailEventKindEnum": "campaigns.models.EventKind.choices",
        "SubjectModeEnum": "campaigns.models.SubjectMode.choices",
        "SubjectTestVerdictEnum": "campaigns.subject_test.Verdict.choices",
        "RateBaseEnum": "campaigns.subject_test.RATE_BASES",
        "ApiKeyScopeEnum": "tenants.models.KeyScope.choices",
        "RoleEnum": "tenants.models.Role.choices",
        "UsageGroupEnum": "routing.usage.GROUPS",
    },
}

# Celery: Redis when REDIS_URL is set; otherwise tasks run in-process (the embedded default).
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task taken by a worker that dies is handed to another after this long (Redis has no connection-bound
# acks); it must exceed the longest task, and chunk tasks are idempotent if it does not.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    # How often a worker looks for such tasks (kombu's default sweep is every 100 s).
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10, minimum=1),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5
CELERY_RESULT_BACKEND = None  # task state lives on our own rows
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

_EMAIL_BACKENDS = {
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "ses": "anymail.backends.amazon_ses.EmailBackend",  # SES v2 SendEmail (raw), through django-anymail
}
EMAIL_BACKEND = _EMAIL_BACKENDS[env_choice("EMAIL_BACKEND", "file", tuple(_EMAIL_BACKENDS))]
EMAIL_FILE_PATH = VAR_DIR / "outbox"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)  # seconds per SMTP step; Django's default waits for ever
# A send claimed longer ago than this (well over an SMTP attempt at EMAIL_TIMEOUT per step) was cut off: the
# email becomes "send unknown" for a person to resolve, never resent by itself.
EMAIL_SEND_LEASE_SECONDS = env_int("EMAIL_SEND_LEASE_SECONDS", 900, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "campaigns@localhost")
# Pacing (campaigns.sending): emails handed over per tenant per second when the tenant sets none (0: unlimited),
# counted in Redis by every worker process. A grant stays counted a little over a second: a message reaches the
# server a varying few ms after its grant, and arrivals must not exceed the rate in any second either.
EMAIL_SEND_RATE_PER_SECOND = env_int("EMAIL_SEND_RATE_PER_SECOND", 0, minimum=0)
EMAIL_SEND_RATE_WINDOW_MS = env_int("EMAIL_SEND_RATE_WINDOW_MS", 1100, minimum=1000)
EMAIL_SEND_RATE_TIMEOUT = env_int("EMAIL_SEND_RATE_TIMEOUT", 60, minimum=1)  # then the task retries later
# A run's send enqueues one task per email, this many ids at a time (never one list of the whole run).
EMAIL_SEND_CHUNK = env_int("EMAIL_SEND_CHUNK", 1000, minimum=1)
# An email queued longer ago than this (plus its place in line at the tenant's rate) lost its task: the beat's
# sweep of due emails enqueues it again (the claim keeps a second task from sending it twice).
EMAIL_SEND_QUEUED_SECONDS = env_int("EMAIL_SEND_QUEUED_SECONDS", 900, minimum=60)

# Webhooks (webhooks.services): the wait before each retry (seconds, ±20 % jitter; the last failure ends the
# delivery), the time allowed per attempt, and when an endpoint that keeps failing is disabled.
WEBHOOK_RETRY_SCHEDULE = [
    float(wait) for wait in env_str("WEBHOOK_RETRY_SCHEDULE", "5,30,120,600,1800,3600,10800,21600").split(",") if wait
]
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOK_QUEUE_RETRY_BELOW_SECONDS = 900  # shorter waits are queued with a countdown; longer ones wait for the sweep
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 24 * 3600, minimum=0)
WEBHOOK_DISABLE_MIN_FAILURES = env_int("WEBHOOK_DISABLE_MIN_FAILURES", 10, minimum=1)
# Posting to private networks (loopback, 10/8, the metadata service) is refused unless this is set: for local
# development and the tests' receivers only.
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", DEBUG)

# AWS: region and optional endpoints (the local emulator in tests and offline development).
AWS_REGION = env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1"))
AWS_ENDPOINT_URLS = {
    "bedrock-runtime": env_str("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
    "personalize-runtime": env_str("AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME"),
    "personalize": env_str("AWS_ENDPOINT_URL_PERSONALIZE"),
    "bedrock": env_str("AWS_ENDPOINT_URL_BEDROCK"),
    "s3": env_str("AWS_ENDPOINT_URL_S3"),
    "sts": env_str("AWS_ENDPOINT_URL_STS"),
    "sesv2": env_str("AWS_ENDPOINT_URL_SESV2"),
}
AWS_MAX_ATTEMPTS = env_int("AWS_MAX_ATTEMPTS", 4, minimum=1)
AWS_READ_TIMEOUT = env_int("AWS_READ_TIMEOUT", 120, minimum=1)
# personalize_sync exports to this bucket (a tenant with its own account names its own) and lets Personalize
# read it through this role; blank: the bucket policy alone grants Personalize access.
PERSONALIZE_BUCKET = env_str("PERSONALIZE_BUCKET")
PERSONALIZE_ROLE_ARN = env_str("PERSONALIZE_ROLE_ARN")

# Delivery reports (issue 11). SES's notifications arrive through SNS at /webhooks/ses/tracking/ and, for the
# List-Unsubscribe mailto, /webhooks/ses/inbound/; each is believed only with a valid SNS signature (and, when
# set, HTTP basic auth with ANYMAIL_WEBHOOK_SECRET "user:password", and a TopicArn in SNS_TOPIC_ARNS).
ANYMAIL = {
    # The SES backend's client for mail Django sends outside campaigns (campaign sends pass the tenant's own; boto3
    # reads AWS_ENDPOINT_URL_SESV2 itself, and the webhooks' SNS and S3 clients must not get SES's endpoint).
    "AMAZON_SES_CLIENT_PARAMS": {"region_name": AWS_REGION},
}
if env_str("ANYMAIL_WEBHOOK_SECRET"):
    ANYMAIL["WEBHOOK_SECRET"] = env_str("ANYMAIL_WEBHOOK_SECRET")
if env_str("AMAZON_SES_CONFIGURATION_SET_NAME"):  # the configuration set whose events SES publishes to SNS
    ANYMAIL["AMAZON_SES_CONFIGURATION_SET_NAME"] = env_str("AMAZON_SES_CONFIGURATION_SET_NAME")
SNS_TOPIC_ARNS = env_list("SNS_TOPIC_ARNS")  # empty: any topic whose message AWS signed
SNS_CERT_TIMEOUT = env_int("SNS_CERT_TIMEOUT", 5, minimum=1)  # seconds to fetch AWS's signing certificate
# Set (e.g. "unsub.mail.example.com", with an SES receipt rule sending its mail to SNS → /webhooks/ses/inbound/):
# List-Unsubscribe also offers mailto:unsubscribe+TOKEN@that-domain. Unset: the https link only.
UNSUBSCRIBE_MAILTO_DOMAIN = env_str("UNSUBSCRIBE_MAILTO_DOMAIN").strip().lower()
SOFT_BOUNCE_LIMIT = env_int("SOFT_BOUNCE_LIMIT", 3, minimum=1)  # soft bounces since its last delivery: suppressed
# The complaint guard: complaints on at least RATE × WINDOW of a tenant's last WINDOW sent emails pause its sending.
COMPLAINT_GUARD_WINDOW = env_int("COMPLAINT_GUARD_WINDOW", 1000, minimum=1)
COMPLAINT_GUARD_RATE = env_float("COMPLAINT_GUARD_RATE", 0.003, minimum=0.0)
# A subject A/B test names a winner only once every variant has this many delivered (or sent) emails.
SUBJECT_TEST_MIN_PER_ARM = env_int("SUBJECT_TEST_MIN_PER_ARM", 100, minimum=2)

# LLM routing: which backend the plan policy uses by default, and per-plan model overrides
# ("basic=<model key>,pro=<model key>", keys from routing.catalog).
LLM_BACKEND = env_choice("LLM_BACKEND", "local", ("local", "bedrock"))
LLM_PLAN_MODELS = dict(item.split("=", 1) for item in env_list("LLM_PLAN_MODELS"))
LLM_MAX_ATTEMPTS = env_int("LLM_MAX_ATTEMPTS", 2, minimum=1)  # validation retries per email
JUDGE_DRAFTS = env_bool("JUDGE_DRAFTS", True)  # the draft judge (campaigns.judge) scores each chunk's drafts
# Plot shortening (campaigns.plots): an item plot longer than PLOT_SHORTEN_OVER characters goes into prompts as a
# summary of about PLOT_SHORT_CHARS, written once per item (and again when its plot changes) on the "shorten" route.
PLOT_SHORTEN_OVER = env_int("PLOT_SHORTEN_OVER", 600, minimum=50)
PLOT_SHORT_CHARS = env_int("PLOT_SHORT_CHARS", 300, minimum=40)
LOCAL_MODEL_PATH = Path(
    env_str("LOCAL_MODEL_PATH", str(VAR_DIR / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
)
LOCAL_MODEL_THREADS = env_int("LOCAL_MODEL_THREADS", 0, minimum=0)  # 0: chosen for the machine

# Per model key: {"rpm": requests per minute, "tpm": tokens per minute}, the model's quota in one AWS account and
# region, as Bedrock meters it; shared by every worker through Redis. Tenants on the platform's account share one
# such budget; a tenant with its own account (its own role) has its own.
LLM_RATE_LIMITS = env_json("LLM_RATE_LIMITS", {})
# The most of the platform account's budget that one tenant may use in a window, as a fraction (from a percentage;
# 100 or more: no cap), so that one large campaign cannot starve every other tenant's. A fixed fraction rather than
# equal shares among the tenants active at the moment, which would need a count of them that is stale once read.
LLM_TENANT_SHARE = env_int("LLM_TENANT_SHARE_PERCENT", 50, minimum=1) / 100
# How long a call stays counted. A little over Bedrock's minute: Bedrock meters a call when it arrives, later than
# we granted it and by a varying delay, so a call granted the instant an older one left our window could still
# find that one counted in Bedrock's (measured: 42 of 200 calls refused with a 429 at exactly 60 s, none at 61 s).
LLM_RATE_WINDOW_MS = env_int("LLM_RATE_WINDOW_MS", 61_000, minimum=1000)
# Model calls in flight per chunk task: LLM calls wait on the network, so threads, not processes, add throughput.
LLM_CONCURRENCY = env_int("LLM_CONCURRENCY", 16, minimum=1)

# Dynamic routing (routing.dynamic, a Pro option): the semantic router's embeddings, Titan Text Embeddings V2 on
# Bedrock or all-MiniLM-L6-v2 on this machine (the `routing` extra), and the cosine below which no reference prompt
# is close (0: the embedder's own, measured by bench/routing.py).
ROUTING_EMBEDDINGS = env_choice("ROUTING_EMBEDDINGS", "bedrock", ("bedrock", "local"))
ROUTING_SIMILARITY_THRESHOLD = env_float("ROUTING_SIMILARITY_THRESHOLD", 0.0, minimum=0.0)
ROUTING_HYBRID_THRESHOLD = env_float(
    "ROUTING_HYBRID_THRESHOLD", 0.0, minimum=0.0
)  # below it hybrid asks the classifier
# Torch threads for MiniLM in each worker process: 1, as one encode on every core stalls when the cores are busy
# (routing.embeddings._minilm); more only for a worker process that has idle cores to itself.
ROUTING_EMBEDDING_THREADS = env_int("ROUTING_EMBEDDING_THREADS", 1, minimum=1)

CAMPAIGN_CHUNK_SIZE = env_int("CAMPAIGN_CHUNK_SIZE", 50, minimum=1)

# Bedrock batch inference (half the on-demand price; results within hours) for runs of at least this many
# contacts on a model that supports it (and never under Bedrock's 100 records per job); 0 turns it off.
BEDROCK_BATCH_MIN_CONTACTS = env_int("BEDROCK_BATCH_MIN_CONTACTS", 1000, minimum=0)
# Where the JSONL goes (under batch/), and the service role Bedrock assumes to read and write it.
BEDROCK_BATCH_BUCKET = env_str("BEDROCK_BATCH_BUCKET", PERSONALIZE_BUCKET)
BEDROCK_BATCH_ROLE_ARN = env_str("BEDROCK_BATCH_ROLE_ARN")
BEDROCK_BATCH_POLL_SECONDS = env_int("BEDROCK_BATCH_POLL_SECONDS", 60, minimum=0)  # between job status checks

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
