"""Forms of the custom admin pages. Tenant choices are always the user's tenants only, so a
crafted POST naming another tenant fails validation on the server."""

from __future__ import annotations

from django import forms

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
