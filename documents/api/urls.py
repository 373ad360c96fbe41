from django.urls import path

from documents.api import audit, views

urlpatterns = [
    path("ingest/", views.IngestView.as_view(), name="api-ingest"),
    path("documents/", views.DocumentListView.as_view(), name="api-document-list"),
    path("documents/<uuid:pk>/", views.DocumentDetailView.as_view(), name="api-document-detail"),
    path("audit/", audit.AuditListView.as_view(), name="api-audit-list"),
]
