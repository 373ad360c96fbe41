"""Tenants, their staff, documents and chunks. Rules about one row live here, with no I/O."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from documents.errors import FailureKind
from documents.pipeline.extract import DOCX, PDF
from documents.pipeline.preflight import FULL, STRUCTURE

# The types whose full preflight reads more than their structure.
_READ_PAGE_BY_PAGE = {PDF, DOCX}


class OverLimitAction(models.TextChoices):
    REFUSE = "refuse", "Refuse the upload"
    HOLD = "hold", "Hold the document until an admin releases it"


class Tenant(models.Model):
    OverLimitAction = OverLimitAction

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    # Derived on the server at creation and never changed: the vectors live under it, so a
    # rename of the tenant must not orphan them, and no client input ever chooses it.
    vector_namespace = models.CharField(max_length=80, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # Upload limits, judged on the preflight estimate (documents/estimates.py); empty = none.
    max_pages_per_document = models.PositiveIntegerField(
        null=True, blank=True, help_text="Documents with more pages are refused or held."
    )
    max_cost_per_document = models.DecimalField(
        "max cost per document (USD)",
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="With Gemini embeddings: documents whose estimated cost is higher are refused "
        "or held. Checking it reads every page at upload, so uploads are slower.",
    )
    over_limit_action = models.CharField(
        max_length=8, choices=OverLimitAction.choices, default=OverLimitAction.HOLD
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:60] or uuid.uuid4().hex[:12]
        if not self.vector_namespace:
            self.vector_namespace = f"tenant-{uuid.uuid4().hex}"
        super().save(*args, **kwargs)

    def limit_exceeded(self, estimate: dict) -> str:
        """The sentence naming the limit an estimate is over, or "" when it is within them
        (or when what a limit needs is not known)."""
        pages = estimate.get("pages")
        limit = self.max_pages_per_document
        if limit is not None and pages is not None and pages > limit:
            return (
                f"This document has {pages:,} pages; {self.name} accepts at most "
                f"{limit:,} pages per document."
            )
        cost, limit = estimate.get("cost_usd"), self.max_cost_per_document
        if limit is not None and cost is not None and cost > float(limit):
            return (
                f"Embedding this document is estimated to cost ${cost:,.4f} "
                f"({estimate.get('tokens') or 0:,} tokens); {self.name} accepts at most "
                f"${limit:,.4f} per document."
            )
        return ""


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        STAFF = "staff", "Staff"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Status(models.TextChoices):
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Stage(models.TextChoices):
    QUEUED = "queued", "Queued"
    HELD = "held", "Held (over a limit, waiting for an admin)"
    WAITING = "waiting", "Waiting (rate limited)"
    DOWNLOADING = "downloading", "Downloading"
    ESTIMATING = "estimating", "Estimating"
    EXTRACTING = "extracting", "Extracting"
    OCR = "ocr", "OCR"
    CHUNKING = "chunking", "Chunking"
    EMBEDDING = "embedding", "Embedding"
    INDEXING = "indexing", "Indexing"
    DONE = "done", "Done"


FAILURE_KIND_CHOICES = list(FailureKind.LABELS.items())


class VectorState(models.TextChoices):
    """What the document's vectors are known to be. A state of its index entry, not of its
    processing: a completed document can be ``purge_pending``."""

    NONE = "none", "No vectors written"
    WRITTEN = "written", "Written"
    # the delete is sent but the index's reads do not show it yet (they lag writes)
    PURGE_PENDING = "purge_pending", "Purge pending"
    PURGED = "purged", "Purged (verified)"


class Document(models.Model):
    Status = Status
    Stage = Stage

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="documents")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    title = models.CharField(max_length=300)
    original_filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    storage_key = models.CharField(max_length=500)

    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PROCESSING, db_index=True
    )
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.QUEUED)
    pages_total = models.PositiveIntegerField(null=True, blank=True)
    pages_done = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(null=True, blank=True)
    chunks_done = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)

    failure_kind = models.CharField(max_length=24, choices=FAILURE_KIND_CHOICES, blank=True)
    failure_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # One entry per failed attempt, retried or final: {"at", "stage", "kind", "message"}.
    attempt_log = models.JSONField(default=list, blank=True)
    # Retries started by the scheduled retry of failed documents (capped by a setting).
    scheduled_retries = models.PositiveIntegerField(default=0)
    # Workers that died (or outlived their claim) while holding this document since it was
    # last queued by hand; past PIPELINE_MAX_WORKER_LOSSES the document fails for good.
    worker_losses = models.PositiveIntegerField(default=0)
    # A rate-limited document waits until then; the stalled sweep resumes it if its
    # delayed message is lost.
    resume_at = models.DateTimeField(null=True, blank=True)

    # Per-stage timing: {"extracting": {"started": iso, "seconds": 1.2}, ...}
    stage_timings = models.JSONField(default=dict, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    claimed_by = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_task_id = models.CharField(max_length=255, blank=True)

    # Vectors this document has in its namespace, as last written or verified by a purge.
    vector_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=120, blank=True)
    embedding_dimension = models.PositiveIntegerField(null=True, blank=True)

    # What the database knows of the vectors, so that deletes never rely on listing an index
    # whose reads lag its writes (written by documents/vector_state.py). Every chunk index a
    # vector was ever written for is below ``vector_high`` (raised before each write, never
    # lowered), so the ids to delete are computed, not looked up.
    vector_state = models.CharField(
        max_length=16, choices=VectorState.choices, default=VectorState.NONE
    )
    vector_high = models.PositiveIntegerField(default=0)
    # The highest log sequence number the store reported for a write of these vectors: a
    # read that reflects it and shows none of them proves a delete (None: not reported).
    vector_lsn = models.BigIntegerField(null=True, blank=True)
    vector_state_at = models.DateTimeField(null=True, blank=True)
    # Chunks of the last run whose vectors came from the embedding cache (no request).
    chunks_from_cache = models.PositiveIntegerField(default=0)
    # Where a retry may resume without redoing finished stages: "" or
    # "indexing:<fingerprint of the chunks and the embedder>" (written by lifecycle.py).
    resume_checkpoint = models.CharField(max_length=100, blank=True)
    # Before and after: what the file is made of and what it was expected to cost
    # ({"facts": Preflight, "estimate": Estimate, "held": reason}), and what processing found
    # ({"pages", "ocr_pages", "chars", "tokens", "chunks", "requests", "seconds"}).
    preflight = models.JSONField(default=dict, blank=True)
    actuals = models.JSONField(default=dict, blank=True)
    # SHA-256 of the extracted text reduced to its words (pipeline/fingerprint.py): the same
    # text in a different file. Written after extraction; compared within the tenant only.
    text_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    # How far the extracted text can be trusted (pipeline/quality.py), written after
    # extraction: {"pages", "ocr_pages", "ocr_share", "mean_confidence", "garbled_layers",
    # "flagged": [{"page", "reason", "ocr_confidence", "garbage_score"}]}; {} until then.
    quality = models.JSONField(default=dict, blank=True)
    # Any page flagged: a column of its own so the list's filter is an indexed lookup.
    low_quality = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "status"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["vector_state", "vector_state_at"]),
            # few documents are low quality: a partial index serves the filter, newest first
            models.Index(
                fields=["tenant", "-created_at"],
                condition=models.Q(low_quality=True),
                name="document_low_quality",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def progress_percent(self) -> int:
        if self.status == Status.COMPLETED:
            return 100
        if self.chunks_total:
            # Reading is the first half of the work, embedding and indexing the second.
            return 50 + int(50 * self.chunks_done / self.chunks_total)
        if self.pages_total:
            return int(50 * self.pages_done / self.pages_total)
        return 0

    @property
    def estimate(self) -> dict:
        guess = (self.preflight or {}).get("estimate") or {}
        if guess and "depth" not in guess:
            # Stored before the depth was: an upload's estimate was then complete only when
            # every page had been read.
            guess = {**guess, "depth": FULL if guess.get("complete") else STRUCTURE}
        return guess

    @property
    def estimate_from_structure(self) -> bool:
        """Whether the estimate was made at upload from the file's structure alone (estimates
        stored before the depth was recorded were made from every page)."""
        return self.estimate.get("depth") == STRUCTURE

    @property
    def needs_estimating(self) -> bool:
        """Whether the ``estimating`` stage has something to add: no complete estimate yet, or
        a PDF or Word file's estimate from its structure, which reading every page's text
        layer replaces. A text file's or an image's is already all there is to know."""
        if not self.estimate.get("complete"):
            return True
        return self.estimate_from_structure and self.content_type in _READ_PAGE_BY_PAGE

    @property
    def held_reason(self) -> str:
        """Why the document is held; empty when it is not (or no longer) held."""
        return (self.preflight or {}).get("held", "") if self.stage == Stage.HELD else ""

    @property
    def flagged_pages(self) -> list[dict]:
        """The pages a person should check, with why: [{"page", "reason", ...}]."""
        return [f for f in (self.quality or {}).get("flagged", []) if isinstance(f, dict)]

    @property
    def namespace(self) -> str:
        return self.tenant.vector_namespace

    @property
    def vector_id_prefix(self) -> str:
        return f"{self.id}#"


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    page_start = models.PositiveIntegerField()
    page_end = models.PositiveIntegerField()
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    vector_id = models.CharField(max_length=120)
    # The chunk's pages include one flagged for its text quality (Document.quality).
    low_quality = models.BooleanField(default=False)
    # SHA-256 of the case- and whitespace-normalised text (documents/pipeline/fusion.py
    # text_hash): search folds copies of one passage into one result by it. The lexical
    # index over ``text`` is outside the model: see documents/lexical.py.
    text_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["document", "index"]
        constraints = [
            models.UniqueConstraint(fields=["document", "index"], name="unique_chunk_index"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id} #{self.index}"

    @property
    def page_span(self) -> str:
        if self.page_start == self.page_end:
            return f"p. {self.page_start}"
        return f"pp. {self.page_start}–{self.page_end}"


class DeletedDocument(models.Model):
    """What a deleted document left outside the database: its stored file and its vectors.

    Written in the same transaction as the delete, removed once both are gone, so a crash
    between the two never leaves files or vectors that nobody knows about."""

    document_id = models.UUIDField(unique=True)
    vector_namespace = models.CharField(max_length=80)
    storage_key = models.CharField(max_length=500, blank=True)
    # The document's vector_high and vector_lsn at the delete (raised by a run that was still
    # writing). None for tombstones written before they were recorded: then the prefix is
    # listed as well.
    vector_high = models.PositiveIntegerField(null=True, blank=True)
    vector_lsn = models.BigIntegerField(null=True, blank=True)
    deleted_at = models.DateTimeField(auto_now_add=True)
    cleanup_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"deleted {self.document_id}"


class RetiredNamespace(models.Model):
    """A deleted tenant's vector namespace, removed from the index once its documents'
    tombstones are gone (an emptied Pinecone namespace still counts against the plan's limit
    of namespaces per index)."""

    namespace = models.CharField(max_length=80, unique=True)
    retired_at = models.DateTimeField(auto_now_add=True)
    cleanup_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"retired {self.namespace}"


class EmbeddingCacheEntry(models.Model):
    """A vector the embedder returned, kept by the exact request that produced it (model,
    dimension, task type, title and text, hashed into ``key``) within one tenant's
    ``scope``, so a retry, a reprocess of unchanged text or a repeated chunk costs no
    request. Shared by every worker; bounded by the cleanup (``embedding_cache.py``)."""

    key = models.CharField(max_length=64, primary_key=True)
    scope = models.CharField(max_length=80, db_index=True)
    model = models.CharField(max_length=120)
    dimension = models.PositiveIntegerField()
    vector = models.BinaryField()  # float32, little-endian
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.model}/{self.dimension} {self.key[:12]}"


class Reconciliation(models.Model):
    """One comparison of a tenant's namespace with its chunks (``reconcile.py``)."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        CLEAN = "clean", "Index matches the database"
        DRIFT = "drift", "Drift found"
        REPAIRED = "repaired", "Drift repaired"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="reconciliations")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    repair = models.BooleanField(default=False)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    listed = models.PositiveIntegerField(default=0)  # ids in the namespace
    expected = models.PositiveIntegerField(default=0)  # ids of live chunks
    orphans_deleted = models.PositiveIntegerField(default=0)  # of documents that no longer exist
    orphans_stale = models.PositiveIntegerField(default=0)  # chunk indexes a document no longer has
    orphans_foreign = models.PositiveIntegerField(default=0)  # ids this project never makes
    wrong_namespace = models.PositiveIntegerField(default=0)  # of another tenant's documents
    missing = models.PositiveIntegerField(default=0)
    documents_missing = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    requeued = models.PositiveIntegerField(default=0)
    samples = models.JSONField(default=dict, blank=True)  # a few ids of each kind
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.tenant} {self.started_at:%Y-%m-%d %H:%M}: {self.get_outcome_display()}"

    @property
    def orphans(self) -> int:
        return self.orphans_deleted + self.orphans_stale + self.orphans_foreign


class AuditEntry(models.Model):
    """One staff action on documents or a tenant: who, when, from where, what, on which rows
    and how many. Append-only: written by ``documents/audit.py`` and never changed (the admin
    has no add, change or delete permission; ``save`` refuses an update). A bulk action is one
    entry per tenant with every id in ``object_ids``, not one row per document."""

    class Source(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        COMMAND = "command", "Command line"
        SCHEDULE = "schedule", "Schedule"
        UNKNOWN = "unknown", "Not recorded"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept as written: the user may be renamed or deleted, the entry must still say who.
    actor_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UNKNOWN)
    # The tenant acted on; kept by name too, since a deleted tenant's entries must remain.
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tenant_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    # Document ids (strings), or the tenant's id for a tenant action.
    object_ids = models.JSONField(default=list, blank=True)
    count = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)
    # Entries written by one action across several tenants share it.
    batch = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [models.Index(fields=["tenant", "-at"], name="audit_tenant_at")]

    def __str__(self) -> str:
        return f"{self.action} x{self.count} by {self.actor_name or self.get_source_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit entries are append-only: an entry is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit entries are append-only: an entry is never deleted.")
