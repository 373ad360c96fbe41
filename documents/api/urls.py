from django.urls import path

from documents.api import audit, search, views

# Ids are matched as any string, not with <uuid:>: a malformed id must reach the view and get
# the API's JSON 404, not fall through to Django's HTML page.
urlpatterns = [
    path("ingest/", views.IngestView.as_view(), name="api-ingest"),
    path("documents/", views.DocumentListView.as_view(), name="api-document-list"),
    path("documents/<str:pk>/", views.DocumentDetailView.as_view(), name="api-document-detail"),
    path(
        "documents/<str:pk>/download/",
        views.DocumentDownloadView.as_view(),
        name="api-document-download",
    ),
    path("audit/", audit.AuditListView.as_view(), name="api-audit-list"),
    path("search/", search.SearchView.as_view(), name="api-search"),
]
