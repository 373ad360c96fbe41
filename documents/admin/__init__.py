"""The back-office. Every change list, change view, action and custom page is scoped to the
tenants the staff member belongs to (superusers see everything), through ``selectors``.

    tenants.py    Tenant and Membership admins, the scoped base class, the tenant filter
    documents.py  the Document admin: list, read-only page, actions, delete, custom URLs
    views.py      the custom pages (upload, progress JSON, chunks, search, dashboard)
    paginator.py  a paginator that does not count a huge table on every page view
"""

from documents.admin.documents import DocumentAdmin
from documents.admin.tenants import MembershipAdmin, TenantAdmin

__all__ = ["DocumentAdmin", "MembershipAdmin", "TenantAdmin"]
