"""The application's one error type and its two families.

Every failure that can end a document carries a *kind* (stored on the document, used for
filters and the dashboard) and a message written for a staff member, not a developer.
Transient errors are retried with backoff; permanent errors fail the document at once.
The messages are single strings so the exceptions survive Celery's JSON result serialisation,
which rebuilds an exception as ``cls(*args)``.
"""

from __future__ import annotations


class FailureKind:
    """Values stored in ``Document.failure_kind``; the model's choices are built from these."""

    # permanent
    ENCRYPTED = "encrypted"
    CORRUPT = "corrupt"
    EMPTY = "empty"
    UNSUPPORTED_TYPE = "unsupported_type"
    TOO_LARGE = "too_large"
    TOO_MANY_PAGES = "too_many_pages"
    # over one of the extraction budgets (ExtractOptions); never retried
    ZIP_PART_TOO_LARGE = "zip_part_too_large"
    ZIP_RATIO_TOO_HIGH = "zip_ratio_too_high"
    PDF_STREAM_TOO_LARGE = "pdf_stream_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    TOO_MANY_OCR_PAGES = "too_many_ocr_pages"
    TOO_MUCH_TEXT = "too_much_text"
    TIME_LIMIT = "time_limit"
    DIMENSION_MISMATCH = "dimension_mismatch"
    REJECTED = "rejected"  # the provider refused the request (bad key, invalid argument)
    # a plan's object limit at a provider (Pinecone's 403 QUOTA_EXCEEDED): staff must act
    QUOTA_EXCEEDED = "quota_exceeded"
    MISSING_FILE = "missing_file"
    OVER_LIMIT = "over_limit"  # over a tenant's page or cost limit (preflight estimate)
    # transient (retried in the task, then by the scheduled retry)
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # network errors, timeouts, 5xx
    WORKER_LOST = "worker_lost"
    # processed with other small documents whose shared time ran out: runs again alone
    BATCH_TIMED_OUT = "batch_timed_out"
    INTERNAL = "internal"  # an unexpected exception (a bug), reported to Sentry
    CANCELLED = "cancelled"

    LABELS = {
        ENCRYPTED: "Encrypted",
        CORRUPT: "Corrupt or truncated file",
        EMPTY: "No readable text",
        UNSUPPORTED_TYPE: "Unsupported type",
        TOO_LARGE: "Too large",
        TOO_MANY_PAGES: "Too many pages",
        ZIP_PART_TOO_LARGE: "Archive part too large",
        ZIP_RATIO_TOO_HIGH: "Archive part compressed too well",
        PDF_STREAM_TOO_LARGE: "PDF stream too large",
        IMAGE_TOO_LARGE: "Image too large",
        TOO_MANY_OCR_PAGES: "Too many pages to OCR",
        TOO_MUCH_TEXT: "Too much text",
        TIME_LIMIT: "Took too long to read",
        DIMENSION_MISMATCH: "Embedding dimension mismatch",
        REJECTED: "Refused by a provider",
        QUOTA_EXCEEDED: "Provider plan limit reached",
        MISSING_FILE: "Stored file missing",
        OVER_LIMIT: "Over the tenant's limit",
        RATE_LIMITED: "Rate limited",
        UNAVAILABLE: "Service unavailable",
        WORKER_LOST: "Worker lost",
        BATCH_TIMED_OUT: "Batch ran out of time",
        INTERNAL: "Internal error",
        CANCELLED: "Cancelled",
    }
    # Internal errors are bugs: retrying the same input cannot help, so they are not transient.
    TRANSIENT = frozenset({RATE_LIMITED, UNAVAILABLE, WORKER_LOST, BATCH_TIMED_OUT})
    # The budgets a document is read within: over one, it fails at once and for good (the
    # same file would break the same limit again).
    BUDGETS = frozenset(
        {
            TOO_MANY_PAGES,
            ZIP_PART_TOO_LARGE,
            ZIP_RATIO_TOO_HIGH,
            PDF_STREAM_TOO_LARGE,
            IMAGE_TOO_LARGE,
            TOO_MANY_OCR_PAGES,
            TOO_MUCH_TEXT,
            TIME_LIMIT,
        }
    )


class ApplicationError(Exception):
    """Base of every error the application raises on purpose."""

    default_kind = FailureKind.INTERNAL
    http_status = 500

    def __init__(self, message: str, kind: str | None = None, retry_after: float | None = None):
        super().__init__(message, kind, retry_after)
        self.message = message
        self.kind = kind or self.default_kind
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class PermanentError(ApplicationError):
    """Retrying cannot help: the input or the configuration is wrong."""

    default_kind = FailureKind.CORRUPT


class BudgetExceeded(PermanentError):
    """A document over one of the extraction budgets (``ExtractOptions``): its kind is one of
    ``FailureKind.BUDGETS`` and its message names the limit and what was measured. Permanent,
    so it is never retried: the same file would break the same limit again."""

    default_kind = FailureKind.TOO_MANY_PAGES


class TransientError(ApplicationError):
    """Worth retrying later. ``retry_after`` is the delay a server asked for, in seconds."""

    default_kind = FailureKind.UNAVAILABLE


class InvalidUpload(PermanentError):
    """An upload the API or the admin refuses before a document exists."""

    http_status = 400


class UploadTooLarge(InvalidUpload):
    default_kind = FailureKind.TOO_LARGE
    http_status = 413


class UnsupportedUpload(InvalidUpload):
    default_kind = FailureKind.UNSUPPORTED_TYPE
    http_status = 415


class NotAMember(ApplicationError):
    """The caller asked to act on a tenant they do not belong to."""

    http_status = 403


class RepeatedWorkerLoss(ApplicationError):
    """Processing the document stopped its worker (a crash, a kill for memory, a claim left to
    go stale) more often than PIPELINE_MAX_WORKER_LOSSES allows: it has failed for good.
    Neither permanent nor transient: the file may be fine and the limit too low, so it is
    reported once, and only a person queues it again."""

    default_kind = FailureKind.WORKER_LOST


class OverLimit(InvalidUpload):
    """The preflight estimate is over one of the tenant's limits and the tenant refuses such
    uploads. 413: the document is larger -- in pages or in cost -- than this tenant accepts."""

    default_kind = FailureKind.OVER_LIMIT
    http_status = 413
