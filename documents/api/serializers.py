from __future__ import annotations

from datetime import datetime

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from documents.estimates import expected_finish
from documents.models import FAILURE_KIND_CHOICES, Document, Status
from documents.pipeline.preflight import FULL, STRUCTURE
from documents.selectors import near_duplicates


class FormSerializer(serializers.Serializer):
    """For form bodies and query strings. DRF reads an empty value of an optional form field as
    if the field were absent, while the schema (and a JSON body) say it must not be empty: here
    it is refused like anywhere else, so ``?tenant=`` is a 400 and not "every tenant"."""

    def validate(self, attrs):
        data = self.initial_data
        blank = {
            name: [field.error_messages.get("blank", "This field may not be blank.")]
            for name, field in self.fields.items()
            # a field that cannot be blank (a UUID, a choice, a slug...); a checkbox's "" is
            # its "off"
            if getattr(field, "allow_blank", False) is False
            and not isinstance(field, serializers.BooleanField)
            and hasattr(data, "get")
            and data.get(name) == ""
        }
        if blank:
            raise serializers.ValidationError(blank)
        return attrs


class IngestSerializer(FormSerializer):
    file = serializers.FileField(
        allow_empty_file=False,
        help_text=(
            "The document: PDF, DOCX, plain text, Markdown, PNG, JPEG or TIFF, judged from its "
            "bytes, not its name; at most DOCUMENT_MAX_UPLOAD_BYTES (50 MB by default)."
        ),
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    tenant = serializers.SlugField(
        required=False,
        help_text="The tenant's slug; required only when you belong to several tenants.",
    )
    keep_duplicate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Keep a new copy even when the tenant already has a file with the same "
        "bytes (SHA-256). Without it such an upload answers 200 with the existing document.",
    )


class QueryBooleanField(serializers.BooleanField):
    """A boolean query parameter: absent means "no filter". (DRF reads an absent boolean of
    a form as false, the way a browser leaves out an unticked checkbox.)"""

    default_empty_html = serializers.empty


class DocumentFilterSerializer(FormSerializer):
    """The list's query parameters, checked like a body: a bad one is a 400 naming it, never
    a value sent on to the database."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    tenant = serializers.SlugField(required=False, help_text="A tenant's slug.")
    low_quality = QueryBooleanField(
        required=False,
        help_text="true: only documents with pages flagged for their text quality; false: "
        "only documents without. Documents not yet extracted count as not low quality.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        # "?low_quality=" is refused like any other empty value, not read as "no filter"
        if getattr(self.initial_data, "get", dict().get)("low_quality") == "":
            raise serializers.ValidationError({"low_quality": ["Must be a valid boolean."]})
        return attrs


class EstimateSerializer(serializers.Serializer):
    """The preflight estimate. At upload it is made from the file's structure (``depth``
    "structure": which PDF pages have a text layer, the size of a Word file's text); the
    ``estimating`` stage then reads every page's text layer and replaces it (``depth``
    "full"). When the structure could not be read (``complete`` false) only ``pages`` is
    known until then."""

    complete = serializers.BooleanField(
        help_text="False when only the page count is known (the file's structure could not "
        "be read); the estimating stage fills in the rest."
    )
    depth = serializers.ChoiceField(
        choices=[STRUCTURE, FULL],
        default=FULL,
        help_text='"structure": from the file\'s structure at upload (pages with and without a '
        'text layer, images, Word XML size), no text read; "full": from every page\'s text '
        "layer, by the estimating stage (or at upload for a tenant with a cost limit).",
    )
    pages = serializers.IntegerField(allow_null=True)
    pages_to_ocr = serializers.IntegerField(allow_null=True)
    tokens = serializers.IntegerField(allow_null=True)
    chunks = serializers.IntegerField(allow_null=True)
    requests = serializers.IntegerField(allow_null=True, help_text="Embedding requests.")
    cost_usd = serializers.FloatField(
        allow_null=True, help_text="At GEMINI_PRICE_PER_MILLION_TOKENS; null for local."
    )
    seconds = serializers.FloatField(
        allow_null=True, help_text="Expected processing time, from recent throughput."
    )


class ActualSerializer(serializers.Serializer):
    """What processing found, in the estimate's units; null until the document completes."""

    pages = serializers.IntegerField()
    ocr_pages = serializers.IntegerField()
    chars = serializers.IntegerField()
    tokens = serializers.IntegerField()
    chunks = serializers.IntegerField()
    requests = serializers.IntegerField()
    cost_usd = serializers.FloatField(allow_null=True)
    seconds = serializers.FloatField()


class FlaggedPageSerializer(serializers.Serializer):
    page = serializers.IntegerField(help_text="1-based page number.")
    reason = serializers.CharField(help_text="Why a person should check it, in a sentence.")
    ocr_confidence = serializers.FloatField(
        allow_null=True, help_text="Tesseract's mean word confidence, 0-100; null without OCR."
    )
    garbage_score = serializers.FloatField(
        allow_null=True,
        help_text="How garbled the PDF's text layer looked, 0-1; null for other files.",
    )


class QualitySerializer(serializers.Serializer):
    """How far the extracted text can be trusted; null until the text has been extracted.
    Thresholds and the measurements behind them: README, "Text quality and tables"."""

    low_quality = serializers.BooleanField(help_text="At least one page is flagged.")
    pages = serializers.IntegerField()
    ocr_pages = serializers.IntegerField(help_text="Pages read with OCR.")
    ocr_share = serializers.FloatField(help_text="ocr_pages / pages, 0-1.")
    mean_confidence = serializers.FloatField(
        allow_null=True, help_text="Mean OCR word confidence of the OCR pages, 0-100."
    )
    garbled_layers = serializers.IntegerField(
        help_text="PDF pages whose text layer scored as garbage and were read with OCR too."
    )
    flagged_pages = FlaggedPageSerializer(many=True)


class IngestResponseSerializer(serializers.Serializer):
    message = serializers.CharField()
    task_id = serializers.CharField()
    document_id = serializers.UUIDField()
    status_url = serializers.URLField()
    status = serializers.CharField()
    stage = serializers.CharField(help_text="queued, or held when over a tenant's limit.")
    held_reason = serializers.CharField(help_text="Why the document is held; empty if not.")
    estimate = EstimateSerializer()
    duplicate = serializers.BooleanField(help_text="Always false on 202.")

    def get_fields(self):
        fields = super().get_fields()
        # "async" is a Python keyword, so it cannot be a class attribute; declared here the
        # schema gets the name the answer really has.
        fields["async"] = serializers.BooleanField(
            help_text="Always true: processing never runs inside the request."
        )
        return fields


class IngestDuplicateSerializer(serializers.Serializer):
    """200: the tenant already has these bytes; nothing was stored or queued."""

    message = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="Always true on 200.")
    document_id = serializers.UUIDField(help_text="The existing document.")
    status_url = serializers.URLField()
    status = serializers.CharField()
    stage = serializers.CharField()
    estimate = EstimateSerializer()


class ProgressSerializer(serializers.Serializer):
    percent = serializers.IntegerField(min_value=0, max_value=100)
    pages_done = serializers.IntegerField()
    pages_total = serializers.IntegerField(allow_null=True)
    chunks_done = serializers.IntegerField()
    chunks_total = serializers.IntegerField(allow_null=True)


class FailureSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=FAILURE_KIND_CHOICES)
    label = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    final = serializers.BooleanField(help_text="False while retries are still to come.")


class DocumentSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()
    vectors = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(
        help_text="The file: streamed, or a redirect to a short-lived presigned URL on S3."
    )

    class Meta:
        model = Document
        fields = [
            "id",
            "url",
            "download_url",
            "tenant",
            "title",
            "original_filename",
            "content_type",
            "size_bytes",
            "sha256",
            "status",
            "stage",
            "progress",
            "failure",
            "attempts",
            "chunk_count",
            "vectors",
            "embedding_model",
            "embedding_dimension",
            "last_task_id",
            "created_at",
            "started_at",
            "finished_at",
            "estimate",
            "expected_finish_at",
            "actual",
            "held_reason",
            "quality",
        ]

    estimate = serializers.SerializerMethodField()
    expected_finish_at = serializers.SerializerMethodField(
        help_text="While processing: its start (or now, while queued) plus the estimated "
        "seconds; null otherwise."
    )
    actual = serializers.SerializerMethodField()
    quality = serializers.SerializerMethodField()

    @extend_schema_field(QualitySerializer(allow_null=True))
    def get_quality(self, obj: Document) -> dict | None:
        quality = obj.quality or {}
        if not quality:
            return None
        return {
            "low_quality": obj.low_quality,
            "pages": quality.get("pages", 0),
            "ocr_pages": quality.get("ocr_pages", 0),
            "ocr_share": quality.get("ocr_share", 0.0),
            "mean_confidence": quality.get("mean_confidence"),
            "garbled_layers": quality.get("garbled_layers", 0),
            "flagged_pages": [
                {
                    "page": f.get("page"),
                    "reason": f.get("reason", ""),
                    "ocr_confidence": f.get("ocr_confidence"),
                    "garbage_score": f.get("garbage_score"),
                }
                for f in obj.flagged_pages
            ],
        }

    def get_expected_finish_at(self, obj: Document) -> datetime | None:
        return expected_finish(obj)

    @extend_schema_field(EstimateSerializer(allow_null=True))
    def get_estimate(self, obj: Document):
        return obj.estimate or None

    @extend_schema_field(ActualSerializer(allow_null=True))
    def get_actual(self, obj: Document):
        return obj.actuals or None

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, obj: Document) -> dict:
        return {
            "percent": obj.progress_percent,
            "pages_done": obj.pages_done,
            "pages_total": obj.pages_total,
            "chunks_done": obj.chunks_done,
            "chunks_total": obj.chunks_total,
        }

    @extend_schema_field(FailureSerializer(allow_null=True))
    def get_failure(self, obj: Document) -> dict | None:
        if not obj.failure_kind:
            return None
        return {
            "kind": obj.failure_kind,
            "label": obj.get_failure_kind_display(),
            "message": obj.failure_message,
            "final": obj.status == Document.Status.FAILED,
        }

    def get_vectors(self, obj: Document) -> dict:
        """A purge counts only once the index shows it: until then ``state`` is
        ``purge_pending`` and ``count`` is the count before it."""
        return {
            "state": obj.vector_state,
            "label": obj.get_vector_state_display(),
            "count": obj.vector_count,
            "from_cache": obj.chunks_from_cache,
        }

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj: Document) -> str:
        return self._absolute("api-document-detail", obj)

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, obj: Document) -> str:
        return self._absolute("api-document-download", obj)

    def _absolute(self, name: str, obj: Document) -> str:
        path = reverse(name, args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class NearDuplicateSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    same_file = serializers.BooleanField()


class DocumentDetailSerializer(DocumentSerializer):
    near_duplicates = serializers.SerializerMethodField()

    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "near_duplicates"]

    @extend_schema_field(NearDuplicateSerializer(many=True))
    def get_near_duplicates(self, obj: Document) -> list[dict]:
        """Documents of the same tenant with the same extracted text in a different file."""
        return [
            {"id": str(d.pk), "title": d.title, "same_file": d.sha256 == obj.sha256}
            for d in near_duplicates(obj)[:20]
        ]
