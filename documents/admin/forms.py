"""Forms of the custom admin pages. Tenant choices are always the user's tenants only, so a
crafted POST naming another tenant fails validation on the server."""

from __future__ import annotations

from django import forms

from documents.models import Status
from documents.search import MAX_RESULTS, SearchFilters
from documents.selectors import tenants_for_user


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one ``<input type=file multiple>``. Only "at least one" is checked
    here: each file is judged by ``services.validate_upload``, so the admin refuses exactly
    what the API refuses, with the same message, file by file."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if not files and self.required:
            raise forms.ValidationError("Choose at least one file.", code="required")
        return files


class _TenantForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=None, empty_label=None)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        tenants = tenants_for_user(user)
        self.fields["tenant"].queryset = tenants
        only = list(tenants[:2])
        if len(only) == 1:
            self.fields["tenant"].initial = only[0].pk


class UploadForm(_TenantForm):
    files = MultipleFileField(label="Files")
    title = forms.CharField(
        required=False,
        max_length=300,
        help_text="Optional. With several files, each title is this followed by the file name.",
    )
    keep_duplicate = forms.BooleanField(
        required=False,
        label="Keep a new copy of files already there",
        help_text="A file whose bytes this tenant already has is not uploaded again unless "
        "this is ticked; the list says which files were already there.",
    )


class SearchForm(_TenantForm):
    q = forms.CharField(label="Query", max_length=1000)
    status = forms.ChoiceField(
        label="Document status", required=False, choices=[("", "Any"), *Status.choices]
    )
    uploaded_from = forms.DateField(
        label="Uploaded from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    uploaded_to = forms.DateField(
        label="Uploaded until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Inclusive.",
    )
    document = forms.UUIDField(
        label="Document id", required=False, help_text="Only this document's passages."
    )
    k = forms.IntegerField(label="Results", min_value=1, max_value=MAX_RESULTS, initial=10)

    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        return SearchFilters(
            status=data.get("status") or "",
            uploaded_from=data.get("uploaded_from"),
            uploaded_to=data.get("uploaded_to"),
            document_id=str(data["document"]) if data.get("document") else "",
        )
