from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from documents.models import Document


class IngestRequestSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, allow_empty_file=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    tenant = serializers.SlugField(
        required=False,
        help_text="The tenant's slug; required only when you belong to several tenants.",
    )


class IngestResponseSerializer(serializers.Serializer):
    message = serializers.CharField()
    task_id = serializers.CharField()
    document_id = serializers.UUIDField()
    status_url = serializers.URLField()
    # Always true: ingestion never runs inside the request.
    async_ = serializers.BooleanField(source="async")


class DocumentSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()
    vectors = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id",
            "url",
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

    def get_progress(self, obj: Document) -> dict:
        return {
            "percent": obj.progress_percent,
            "pages_done": obj.pages_done,
            "pages_total": obj.pages_total,
            "chunks_done": obj.chunks_done,
            "chunks_total": obj.chunks_total,
        }

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

    def get_url(self, obj: Document) -> str:
        path = reverse("api-document-detail", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path
