"""Settings, read from the environment in this one place (django-environ).

With nothing set, the embedded defaults apply: SQLite and a filesystem broker under ``var/``,
local file storage, the local embedding model and LanceDB. ``DATABASE_URL``,
``CELERY_BROKER_URL``, the ``AWS_*``/``S3_*`` variables, ``GEMINI_API_KEY`` and
``PINECONE_*`` switch to the production services. A malformed value stops start-up with a
message that names the variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from backoffice import secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _read(name: str, cast, default):
    """Read one variable, turning django-environ's bare ValueError into a message that names it."""
    try:
        return cast(name, default=default)
    except (ValueError, ImproperlyConfigured, environ.compat.ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} is malformed: {exc}") from exc


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(name: str, default: bool) -> bool:
    # django-environ reads any unknown word as False; a typo must not silently turn DEBUG off.
    raw = env.str(name, default=str(default)).strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ImproperlyConfigured(
            f"Environment variable {name} must be true or false; got {raw!r}."
        )
    return raw in _TRUE


def _positive_int(name: str, default: int) -> int:
    value = _read(name, env.int, default)
    if value <= 0:
        raise ImproperlyConfigured(f"Environment variable {name} must be a positive integer.")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _read(name, env.str, default)
    if value not in choices:
        raise ImproperlyConfigured(
            f"Environment variable {name} must be one of {', '.join(choices)}; got {value!r}."
        )
    return value


DEBUG = _bool("DEBUG", False)
# A deployment, as opposed to the embedded defaults `make run` uses with nothing set: it must
# bring its own SECRET_KEY, and `make setup` does not load the demo logins into it.
PRODUCTION = _bool("PRODUCTION", bool(_read("DATABASE_URL", env.str, "")))
SECRET_KEY = secret_key.resolve(
    configured=_read("SECRET_KEY", env.str, ""),
    debug=DEBUG,
    production=PRODUCTION,
    var_dir=VAR_DIR,
)
# Old keys still accepted for signatures made before a rotation; refused like SECRET_KEY.
SECRET_KEY_FALLBACKS = [
    secret_key.check_key(key, name="SECRET_KEY_FALLBACKS", debug=DEBUG)
    for key in _read("SECRET_KEY_FALLBACKS", env.list, [])
]
ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, [])

# --- HTTPS --------------------------------------------------------------------------------
# Off by default so the embedded defaults work over http://127.0.0.1; a deployment behind
# HTTPS switches each on (README, "Production"; `manage.py check --deploy` is clean with the
# values in .env.example).
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", env.int, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = _bool("CSRF_COOKIE_SECURE", False)
# The header a TLS-terminating proxy sets to "https" (e.g. X-Forwarded-Proto). Trust it only
# behind a proxy that always sets or strips it, or a client can claim HTTPS.
_proxy_ssl_header = _read("SECURE_PROXY_SSL_HEADER", env.str, "").strip()
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# How many proxies in front of the web process append to X-Forwarded-For. 0: the client is
# REMOTE_ADDR (X-Forwarded-For is ignored, since any client can send one). Throttles and the
# login lockout count per client address, so this must match the deployment.
TRUSTED_PROXY_COUNT = _read("TRUSTED_PROXY_COUNT", env.int, 0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "django_celery_beat",
    "axes",
    "documents",
]
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out user name and address is refused before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"

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
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------
DATABASES = {
    "default": _read("DATABASE_URL", env.db_url, f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if not DATABASES["default"]["ENGINE"].startswith("django.db.backends."):
    # django-environ passes an unknown scheme through as the engine name.
    raise ImproperlyConfigured(
        "Environment variable DATABASE_URL has an unknown scheme; use postgres:// or sqlite:///."
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Four worker processes, beat and the web server write to one file. WAL lets readers
    # run beside the one writer; IMMEDIATE takes the write lock at BEGIN, because a deferred
    # transaction that reads first and then writes gets "database is locked" at once when
    # another connection holds the lock (SQLite does not wait there: it would deadlock); the
    # timeout is how long a writer waits for the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": _positive_int("SQLITE_BUSY_TIMEOUT_SECONDS", 30),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = _read("CONN_MAX_AGE", env.int, 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = VAR_DIR / "media"

# --- file storage -------------------------------------------------------------------------
S3_BUCKET = _read("S3_BUCKET", env.str, "")
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "region_name": _read("S3_REGION", env.str, "us-east-1"),
            "endpoint_url": _read("S3_ENDPOINT_URL", env.str, None),
            "access_key": _read("AWS_ACCESS_KEY_ID", env.str, None),
            "secret_key": _read("AWS_SECRET_ACCESS_KEY", env.str, None),
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": _positive_int("S3_PRESIGNED_EXPIRE_SECONDS", 300),
            # Keys are unique per document (they contain its UUID), so an overwrite is a
            # re-upload of the same document, never a collision.
            "file_overwrite": True,
            # botocore signs with SigV2-style URLs against a custom endpoint unless told.
            "signature_version": "s3v4",
            "addressing_style": _read("S3_ADDRESSING_STYLE", env.str, "path"),
        },
    }

# --- uploads and extraction -----------------------------------------------------------------
DOCUMENT_MAX_UPLOAD_BYTES = _positive_int("DOCUMENT_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
# Uploads above this size are spooled to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Django's two handlers, which also hash each file while its body streams in, so intake does
# not read it again to find its SHA-256 (documents/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "documents.uploads.DigestingMemoryFileUploadHandler",
    "documents.uploads.DigestingTemporaryFileUploadHandler",
]
PIPELINE_MAX_PAGES = _positive_int("PIPELINE_MAX_PAGES", 2000)


def _positive_float(name: str, default: float) -> float:
    value = _read(name, env.float, default)
    if value <= 0:
        raise ImproperlyConfigured(f"Environment variable {name} must be a positive number.")
    return value


# The budgets every document is read within (documents/pipeline/budgets.py; README,
# "Budgets"). Over one, the document fails at once with a kind of its own, never retried. The
# defaults leave every file of the shared corpus as it was; the corpus's largest values are
# in the comments of ExtractOptions (documents/pipeline/types.py).
# Uncompressed bytes of any one part of a Word package, from the ZIP directory and while
# inflating (the corpus's largest is 2.3 MB).
PIPELINE_MAX_ZIP_PART_BYTES = _positive_int("PIPELINE_MAX_ZIP_PART_BYTES", 64_000_000)
# Uncompressed / compressed size of a ZIP part over 1 MB (corpus: 42; ZIP bombs 300-1,000).
PIPELINE_MAX_ZIP_RATIO = _positive_float("PIPELINE_MAX_ZIP_RATIO", 200.0)
# Inflated bytes of any one stream a PDF page draws, checked before PDFium parses the page.
PIPELINE_MAX_PDF_STREAM_BYTES = _positive_int("PIPELINE_MAX_PDF_STREAM_BYTES", 100_000_000)
# Pixels of an image file, a TIFF frame or an image on a PDF page to OCR, from the headers
# (corpus: 81 million; A3 at 600 DPI is 70 million). Image files also stop at Pillow's
# decompression-bomb warning (89.5 million), whichever is lower.
PIPELINE_MAX_IMAGE_PIXELS = _positive_int("PIPELINE_MAX_IMAGE_PIXELS", 100_000_000)
# Pages read with OCR per document, counted before the first one is read.
PIPELINE_MAX_OCR_PAGES = _positive_int("PIPELINE_MAX_OCR_PAGES", 300)
# Characters of text per document.
PIPELINE_MAX_CHARS = _positive_int("PIPELINE_MAX_CHARS", 10_000_000)
# Wall time per document: the processing task's soft time limit (SoftTimeLimitExceeded ends
# the document failed / time_limit), and the deadline extraction checks between pages and
# while Tesseract runs (which names the page it stopped at). The hard limit, which kills the
# pool process when the soft one was not heeded (stuck in C code), comes
# PIPELINE_TIME_LIMIT_GRACE_SECONDS later.
PIPELINE_MAX_DOCUMENT_SECONDS = _positive_float("PIPELINE_MAX_DOCUMENT_SECONDS", 1200.0)
PIPELINE_TIME_LIMIT_GRACE_SECONDS = _positive_float("PIPELINE_TIME_LIMIT_GRACE_SECONDS", 60.0)
OCR_LANGUAGES = _read("OCR_LANGUAGES", env.str, "eng")
OCR_DPI = _positive_int("OCR_DPI", 200)
OCR_PARALLEL_PAGES = _positive_int("OCR_PARALLEL_PAGES", 2)
TESSERACT_CMD = _read("TESSERACT_CMD", env.str, "tesseract")
PIPELINE_TMP_DIR = Path(_read("PIPELINE_TMP_DIR", env.str, str(VAR_DIR / "tmp")))

# --- embeddings ---------------------------------------------------------------------------
GEMINI_API_KEY = _read("GEMINI_API_KEY", env.str, "")
EMBEDDER = _choice("EMBEDDER", "gemini" if GEMINI_API_KEY else "local", ("local", "gemini"))
GEMINI_BASE_URL = _read("GEMINI_BASE_URL", env.str, "")
GEMINI_MODEL = _read("GEMINI_MODEL", env.str, "gemini-embedding-001")
GEMINI_DIMENSION = _positive_int("GEMINI_DIMENSION", 768)
GEMINI_TIMEOUT_SECONDS = _positive_int("GEMINI_TIMEOUT_SECONDS", 60)
# Shared quotas per minute and project (0 = no limit); the defaults are the Gemini API's Tier 1
# (docs/external-services.md). A batch counts one request per text.
GEMINI_REQUESTS_PER_MINUTE = _read("GEMINI_REQUESTS_PER_MINUTE", env.int, 3000)
GEMINI_TOKENS_PER_MINUTE = _read("GEMINI_TOKENS_PER_MINUTE", env.int, 1_000_000)
# The share of those budgets the limiter leaves unused: our window and Google's start their
# clocks at different moments, and our token count is a model of Gemini's tokenizer.
GEMINI_QUOTA_HEADROOM = _read("GEMINI_QUOTA_HEADROOM", env.float, 0.03)
if not 0.0 <= GEMINI_QUOTA_HEADROOM < 1.0:
    raise ImproperlyConfigured("Environment variable GEMINI_QUOTA_HEADROOM must be in [0, 1).")
# 16, not sentence-transformers' 32: docs/measurements.md, "Local embedding batch size".
LOCAL_EMBEDDING_BATCH_SIZE = _positive_int("LOCAL_EMBEDDING_BATCH_SIZE", 16)
# int8 by default: recall on the retrieval benchmark is torch's within noise on every set
# (bench/bench_int8_recall.py; README, "Faster where the time goes"). torch stays the fallback.
LOCAL_EMBEDDING_BACKEND = _choice(
    "LOCAL_EMBEDDING_BACKEND", "onnx-int8", ("torch", "onnx", "onnx-int8")
)
LOCAL_EMBEDDING_CACHE_DIR = Path(
    _read("LOCAL_EMBEDDING_CACHE_DIR", env.str, str(VAR_DIR / "models"))
)
# Chunk targets per embedder, in that embedder's tokens. MiniLM cuts input at 256 word
# pieces, so 256 is its hard ceiling; Gemini accepts 2,048 tokens but our count is an estimate.
CHUNK_TOKENS = {
    "local": _positive_int("CHUNK_TOKENS_LOCAL", 256),
    "gemini": _positive_int("CHUNK_TOKENS_GEMINI", 1024),
}
CHUNK_OVERLAP = {
    "local": _read("CHUNK_OVERLAP_LOCAL", env.int, 32),
    "gemini": _read("CHUNK_OVERLAP_GEMINI", env.int, 100),
}

# The preflight estimate (documents/estimates.py): the price of Gemini embeddings (US dollars
# per million input tokens, docs/external-services.md), and how many of
# the latest completed documents the expected time is measured from.
GEMINI_PRICE_PER_MILLION_TOKENS = _read("GEMINI_PRICE_PER_MILLION_TOKENS", env.float, 0.15)
ESTIMATE_RECENT_DOCUMENTS = _positive_int("ESTIMATE_RECENT_DOCUMENTS", 50)

# --- vectors ------------------------------------------------------------------------------
PINECONE_API_KEY = _read("PINECONE_API_KEY", env.str, "")
PINECONE_INDEX_HOST = _read("PINECONE_INDEX_HOST", env.str, "")
VECTOR_STORE = _choice(
    "VECTOR_STORE", "pinecone" if PINECONE_INDEX_HOST else "lancedb", ("lancedb", "pinecone")
)
PINECONE_TIMEOUT_SECONDS = _positive_int("PINECONE_TIMEOUT_SECONDS", 30)
LANCEDB_URI = _read("LANCEDB_URI", env.str, str(VAR_DIR / "lancedb"))
# Pinecone's reads lag its writes. A purge waits at most VECTOR_PURGE_WAIT_SECONDS for the
# reads to show its delete (the document says "purge pending" meanwhile; the purge task, then
# the cleanup, look again). A delete that log sequence numbers cannot prove must stay absent
# for VECTOR_PURGE_SETTLE_SECONDS in a row.
VECTOR_PURGE_WAIT_SECONDS = _positive_int("VECTOR_PURGE_WAIT_SECONDS", 60)
VECTOR_PURGE_POLL_SECONDS = _read("VECTOR_PURGE_POLL_SECONDS", env.float, 1.0)
VECTOR_PURGE_SETTLE_SECONDS = _read("VECTOR_PURGE_SETTLE_SECONDS", env.float, 10.0)
# Reconciliation of each namespace with the database (weekly); documents whose vectors
# changed more recently than the grace period are left out (their writes may not show yet).
RECONCILE_INTERVAL_SECONDS = _positive_int("RECONCILE_INTERVAL_SECONDS", 7 * 24 * 3600)
RECONCILE_GRACE_SECONDS = _positive_int("RECONCILE_GRACE_SECONDS", 900)
RECONCILE_REPAIR_SCHEDULED = _bool("RECONCILE_REPAIR_SCHEDULED", False)
# Search folds a result into one ranked above it when they share at least this share of their
# word 3-grams (Jaccard): a revised copy of a file, a chunk cut a few words differently.
# 1 folds only chunks with the same words in the same order.
SEARCH_NEAR_DUPLICATE_JACCARD = _read("SEARCH_NEAR_DUPLICATE_JACCARD", env.float, 0.5)
if not 0.0 < SEARCH_NEAR_DUPLICATE_JACCARD <= 1.0:
    raise ImproperlyConfigured(
        "Environment variable SEARCH_NEAR_DUPLICATE_JACCARD must be in (0, 1]."
    )
# The embedding cache (a table): at most this many vectors, none unused for longer.
EMBEDDING_CACHE_MAX_ENTRIES = _positive_int("EMBEDDING_CACHE_MAX_ENTRIES", 200_000)
EMBEDDING_CACHE_MAX_AGE_DAYS = _positive_int("EMBEDDING_CACHE_MAX_AGE_DAYS", 90)
if VECTOR_STORE == "pinecone" and not (PINECONE_API_KEY and PINECONE_INDEX_HOST):
    raise ImproperlyConfigured(
        "VECTOR_STORE=pinecone needs both PINECONE_API_KEY and PINECONE_INDEX_HOST."
    )
if EMBEDDER == "gemini" and not GEMINI_API_KEY:
    raise ImproperlyConfigured("EMBEDDER=gemini needs GEMINI_API_KEY.")

# --- Celery -------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = _read("CELERY_BROKER_URL", env.str, "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport needs these folders to exist (DocumentsConfig.ready).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Broadcast (ping, inspect) state; kombu puts it in the working directory otherwise.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # A task still running after the visibility timeout is handed to a second worker, so it
    # must exceed both the hard time limit and the longest retry countdown (see task_time_limit).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200}
    if PIPELINE_MAX_DOCUMENT_SECONDS + PIPELINE_TIME_LIMIT_GRACE_SECONDS >= 7200:
        raise ImproperlyConfigured(
            "PIPELINE_MAX_DOCUMENT_SECONDS plus PIPELINE_TIME_LIMIT_GRACE_SECONDS must stay "
            "under Redis's visibility timeout of 7,200 s, or a document still running would "
            "be handed to a second worker."
        )
# The rate limiter's counters live beside the broker when it is Redis, so every worker
# process shares one budget; otherwise in the process.
RATE_LIMIT_STORAGE_URI = _read(
    "RATE_LIMIT_STORAGE_URI",
    env.str,
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis://") else "memory://",
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = _read("CELERY_TASK_DEFAULT_QUEUE", env.str, "celery")
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = _positive_int("CELERY_RESULT_EXPIRES_SECONDS", 7 * 24 * 3600)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# A killed child process re-sends its task like retry(), bounded by max_retries, instead of
# task_reject_on_worker_lost, which can re-queue a poison task forever.
CELERY_TASK_RETRY_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = _positive_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 100)
CELERY_WORKER_CONCURRENCY = _positive_int("CELERY_WORKER_CONCURRENCY", 4)
# Threads each process gives the local model. ONNX Runtime and torch start one per core in
# every process, so the pool's processes on fewer cores than threads run many busy (for ONNX
# Runtime, spinning) threads and embed less in total than one thread each (docs/measurements.md,
# "Embedding threads per worker process"). The default shares the cores among the processes.
LOCAL_EMBEDDING_THREADS = _positive_int(
    "LOCAL_EMBEDDING_THREADS", max(1, len(os.sched_getaffinity(0)) // CELERY_WORKER_CONCURRENCY)
)
# Memory per pool process. The soft limit is Celery's: a process whose peak resident size
# passed it is replaced after its task (the Procfile passes it as --max-memory-per-child, in
# KiB). The hard limit is ours: the worker's main process kills a pool process (with the
# Tesseracts it started) above it mid-task, which Celery's cannot do (documents/watchdog.py);
# 0 turns it off. A process with the local model loaded holds about 0.7 GB.
WORKER_RECYCLE_MEMORY_MB = _positive_int("WORKER_RECYCLE_MEMORY_MB", 1536)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = WORKER_RECYCLE_MEMORY_MB * 1024
WORKER_MEMORY_LIMIT_MB = _read("WORKER_MEMORY_LIMIT_MB", env.int, 2048)
if WORKER_MEMORY_LIMIT_MB < 0:
    raise ImproperlyConfigured("Environment variable WORKER_MEMORY_LIMIT_MB must be 0 or more.")
# How often a worker's main process writes its heartbeat file (documents/heartbeat.py).
WORKER_HEARTBEAT_SECONDS = _positive_int("WORKER_HEARTBEAT_SECONDS", 5)
CELERY_TASK_TIME_LIMIT = 3600
CELERY_TASK_SOFT_TIME_LIMIT = 3300
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# A claim without a heartbeat for this long belongs to a dead worker: another delivery may
# take it over, and the stalled sweep re-queues it.
CLAIM_TIMEOUT_SECONDS = _positive_int("CLAIM_TIMEOUT_SECONDS", 300)
# A document whose processing lost its worker (killed, or silent past the claim timeout) more
# than this many times fails for good as worker_lost: a poison file must not loop forever.
PIPELINE_MAX_WORKER_LOSSES = _read("PIPELINE_MAX_WORKER_LOSSES", env.int, 2)
# In-task retries for transient errors: 2 s, 4 s, 8 s; a longer server-given delay wins.
PIPELINE_MAX_RETRIES = _read("PIPELINE_MAX_RETRIES", env.int, 3)
PIPELINE_RETRY_BASE_SECONDS = _read("PIPELINE_RETRY_BASE_SECONDS", env.float, 2.0)

# Batches across documents (docs/decisions/0007-batches-across-documents.md): a run whose
# document has fewer chunks than this claims further queued documents of at most
# PIPELINE_BATCH_MAX_DOCUMENT_BYTES and embeds their chunks together; 0 turns it off.
PIPELINE_BATCH_CHUNKS = _read("PIPELINE_BATCH_CHUNKS", env.int, 256)
if PIPELINE_BATCH_CHUNKS < 0:
    raise ImproperlyConfigured("Environment variable PIPELINE_BATCH_CHUNKS must be 0 or more.")
PIPELINE_BATCH_MAX_DOCUMENT_BYTES = _positive_int("PIPELINE_BATCH_MAX_DOCUMENT_BYTES", 4_000_000)

# A rate-limited document waits with a delayed message up to this long; longer waits are
# resumed by the stalled sweep (a countdown must stay well under the visibility timeout).
PIPELINE_PARK_MAX_COUNTDOWN_SECONDS = _positive_int("PIPELINE_PARK_MAX_COUNTDOWN_SECONDS", 3600)

# Schedules (beat, created by migration; editable in the admin afterwards).
RETRY_FAILED_INTERVAL_SECONDS = _positive_int("RETRY_FAILED_INTERVAL_SECONDS", 300)
RETRY_FAILED_BASE_SECONDS = _positive_int("RETRY_FAILED_BASE_SECONDS", 300)
RETRY_FAILED_MAX_ATTEMPTS = _read("RETRY_FAILED_MAX_ATTEMPTS", env.int, 4)
REQUEUE_STALLED_INTERVAL_SECONDS = _positive_int("REQUEUE_STALLED_INTERVAL_SECONDS", 60)
# A document queued this long with no message in the broker or a worker lost its message.
STALLED_QUEUED_SECONDS = _positive_int("STALLED_QUEUED_SECONDS", 600)
CLEANUP_INTERVAL_SECONDS = _positive_int("CLEANUP_INTERVAL_SECONDS", 3600)

HEALTH_CHECK_TIMEOUT_SECONDS = _read("HEALTH_CHECK_TIMEOUT_SECONDS", env.float, 2.0)


# --- API ----------------------------------------------------------------------------------
def _rate(name: str, default: str) -> str | None:
    """A DRF throttle rate ("N/second|minute|hour|day"), or None for "none" (no throttle)."""
    value = _read(name, env.str, default).strip().lower()
    if value in {"none", "off", ""}:
        return None
    count, _, period = value.partition("/")
    if not (count.isdigit() and int(count) > 0 and period[:1] in {"s", "m", "h", "d"}):
        raise ImproperlyConfigured(
            f"Environment variable {name} must be a rate like 60/minute, or none; got {value!r}."
        )
    return value


# Per scope (documents/api/throttles.py): every authenticated request counts against "user",
# uploads also against "ingest"; "anon" is per address without credentials; "failed_auth"
# counts wrong tokens per address, and past it every token from there is refused for a while.
API_THROTTLE_RATES = {
    "user": _rate("API_THROTTLE_USER", "600/minute"),
    "ingest": _rate("API_THROTTLE_INGEST", "60/minute"),
    "anon": _rate("API_THROTTLE_ANON", "60/minute"),
    "failed_auth": _rate("API_THROTTLE_FAILED_AUTH", "10/minute"),
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "documents.api.authentication.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "documents.api.throttles.UserThrottle",
        "documents.api.throttles.AnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES,
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "documents.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Document ingestion back-office API",
    "DESCRIPTION": "Upload documents for ingestion and follow their processing.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own, so an upload is `format: binary` (a file
    # part) and not the URL the same field would be in a response.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ErrorCodeEnum": "documents.api.errors.ERROR_CODES"},
    # Swagger UI's assets from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- admin login lockout (django-axes) --------------------------------------------------------
# After LOGIN_FAILURE_LIMIT wrong passwords for one user name from one address, that pair is
# refused (429, even with the right password) for LOGIN_COOLOFF_MINUTES. Counting the pair, not
# the address alone, means an attacker cannot lock a real admin out from elsewhere. A success
# clears the count; `manage.py axes_reset` or the Axes admin pages unlock by hand.
AXES_FAILURE_LIMIT = _positive_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=_positive_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "backoffice.client_address.client_ip"

# --- cache (the throttles' counters) -----------------------------------------------------------
# Shared by every web process: Redis when the broker is Redis, else files under var/.
CACHES = {
    "default": _read(
        "CACHE_URL",
        env.cache_url,
        CELERY_BROKER_URL
        if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
        else f"filecache://{VAR_DIR / 'cache'}",
    )
}
CACHES["default"].setdefault("KEY_PREFIX", "backoffice")

# --- errors -------------------------------------------------------------------------------
SENTRY_DSN = _read("SENTRY_DSN", env.str, "")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=_read("SENTRY_ENVIRONMENT", env.str, "production"),
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
        # The auto-enabled google-genai and httpx integrations would report every failed
        # call, including the ones a retry recovers from; a task reports once, at the end.
        auto_enabling_integrations=False,
        send_default_pii=False,
        traces_sample_rate=0.0,
        send_client_reports=False,
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _read("LOG_LEVEL", env.str, "INFO")},
}
