from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from documents.models import FAILURE_KIND_CHOICES, Document, Status


class FormSerializer(serializers.Serializer):
    """For form bodies and query strings. DRF reads an empty value of an optional form field as
    if the field were absent, while the schema (and a JSON body) say it must not be empty: here
    it is refused like anywhere else, so ``?tenant=`` is a 400 and not "every tenant"."""

    def validate(self, attrs):
        data = self.initial_data
        blank = {
            name: [field.error_messages.get("blank", "This field may not be blank.")]
            for name, field in self.fields.items()
            if getattr(field, "allow_blank", True) is False
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


class DocumentFilterSerializer(FormSerializer):
    """The list's query parameters, checked like a body: a bad one is a 400 naming it, never
    a value sent on to the database."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    tenant = serializers.SlugField(required=False, help_text="A tenant's slug.")


class IngestResponseSerializer(serializers.Serializer):
    message = serializers.CharField()
    task_id = serializers.CharField()
    document_id = serializers.UUIDField()
    status_url = serializers.URLField()

    def get_fields(self):
        fields = super().get_fields()
        # "async" is a Python keyword, so it cannot be a class attribute; declared here the
        # schema gets the name the answer really has.
        fields["async"] = serializers.BooleanField(
            help_text="Always true: processing never runs inside the request."
        )
        return fields


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
        ]

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
