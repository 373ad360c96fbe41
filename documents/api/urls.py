from django.urls import path

from documents.api import views

urlpatterns = [
    path("ingest/", views.IngestView.as_view(), name="api-ingest"),
    path("documents/", views.DocumentListView.as_view(), name="api-document-list"),
    path("documents/<uuid:pk>/", views.DocumentDetailView.as_view(), name="api-document-detail"),
]
