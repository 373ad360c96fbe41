"""``GET /api/search/``: hybrid search over one of the caller's tenants."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from documents.api.errors import error_responses
from documents.api.serializers import FormSerializer
from documents.search import MAX_RESULTS, tenant_for_search, tenant_search


class QueryField(serializers.CharField):
    """A query string in which NUL characters are dropped: they mean nothing to a search, and
    DRF (like PostgreSQL) refuses them, while the schema, like HTTP, allows them."""

    def to_internal_value(self, data):
        return super().to_internal_value(data).replace("\x00", "")


class SearchQuerySerializer(FormSerializer):
    # Not trimmed: a query of spaces or control characters is a valid string that finds
    # nothing (200, no results), not a missing parameter.
    q = QueryField(
        max_length=1000,
        trim_whitespace=False,
        help_text="What to look for: words or a sentence.",
    )
    tenant = serializers.SlugField(
        required=False,
        help_text="The tenant's slug; required only when you belong to several tenants.",
    )
    k = serializers.IntegerField(
        required=False,
        default=10,
        min_value=1,
        max_value=MAX_RESULTS,
        help_text=f"How many results, 1 to {MAX_RESULTS}.",
    )


class PlaceSerializer(serializers.Serializer):
    document_id = serializers.UUIDField()
    title = serializers.CharField()
    chunk_index = serializers.IntegerField()
    page_start = serializers.IntegerField()
    page_end = serializers.IntegerField()
    same_text = serializers.BooleanField(
        help_text="True: the same text (case and whitespace ignored); false: nearly the same."
    )


class SearchHitSerializer(serializers.Serializer):
    chunk_id = serializers.CharField(
        source="vector_id", help_text="`<document id>#<chunk index>`, the chunk's vector id."
    )
    document_id = serializers.UUIDField()
    title = serializers.CharField()
    chunk_index = serializers.IntegerField()
    page_start = serializers.IntegerField()
    page_end = serializers.IntegerField()
    score = serializers.FloatField(
        help_text="Higher is better; comparable only within one answer (a lexical rank when "
        "`mode` is `lexical`, a reciprocal rank fusion score when it is `fused`)."
    )
    found_by = serializers.ChoiceField(
        choices=["lexical", "vector", "both"],
        help_text="Which side of the search returned this chunk among its candidates.",
    )
    text = serializers.CharField()
    also_in = PlaceSerializer(
        many=True,
        help_text="Other chunks of the tenant with the same text (case and whitespace "
        "ignored), folded into this result: a document uploaded twice, a merged file; and "
        "chunks among the candidates with nearly the same text (`same_text` false: most of "
        "their runs of three words in common, SEARCH_NEAR_DUPLICATE_JACCARD), such as a "
        "revised copy of a file.",
    )
    low_quality = serializers.BooleanField(
        help_text="The chunk's pages include one flagged for its text quality (a garbled "
        "text layer, a low OCR confidence): check the passage against the file."
    )


class SearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    tenant = serializers.SlugField()
    k = serializers.IntegerField()
    mode = serializers.ChoiceField(
        choices=["lexical", "fused"],
        help_text="`lexical`: the lexical side's first chunk held enough of the query's "
        "words and its ranking is the answer; `fused`: both sides fused by weighted "
        "reciprocal rank fusion.",
    )
    terms = serializers.ListField(
        child=serializers.CharField(), help_text="The query's words the lexical side searched."
    )
    results = SearchHitSerializer(many=True)


@extend_schema(
    parameters=[SearchQuerySerializer],
    responses={200: SearchResponseSerializer, **error_responses(400, 401, 403, 429, 503)},
    summary="Search a tenant's documents",
    description="The passages (chunks) of your tenant that best match the query, found by "
    "words (full-text search in the database) and by meaning (the vector index) and fused. "
    "Chunks with the same or nearly the same text are one result that lists the other "
    "places in `also_in`. "
    "Only documents whose vectors are written are searched (not purged ones).",
)
class SearchView(APIView):
    def get(self, request):
        form = SearchQuerySerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        wanted = form.validated_data
        tenant = tenant_for_search(user=request.user, tenant_slug=wanted.get("tenant"))
        result = tenant_search(tenant=tenant, query=wanted["q"], top_k=wanted["k"])
        return Response(
            SearchResponseSerializer(
                {
                    "query": wanted["q"],
                    "tenant": tenant.slug,
                    "k": wanted["k"],
                    "mode": result.mode,
                    "terms": result.terms,
                    "results": result.hits,
                }
            ).data
        )
