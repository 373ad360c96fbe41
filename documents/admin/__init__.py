"""The back-office. Every change list, change view, action and custom page is scoped to the
tenants the staff member belongs to (superusers see everything), through ``selectors``.

    tenants.py    Tenant and Membership admins, the scoped base class, the tenant filter
    documents.py  the Document admin: list, read-only page, actions, delete, custom URLs
    views.py      the custom pages (upload, progress JSON, chunks, search, dashboard)
    paginator.py  a paginator that does not count a huge table on every page view
    insight.py    the document page's estimate, near-duplicates and history; the list's
                  estimate sum and the release of held documents
    audit.py      the audit trail, read-only
"""

from documents.admin.audit import AuditEntryAdmin
from documents.admin.documents import DocumentAdmin
from documents.admin.tenants import MembershipAdmin, TenantAdmin

__all__ = ["AuditEntryAdmin", "DocumentAdmin", "MembershipAdmin", "TenantAdmin"]
