"""The one place tests build rows: personas' tenants, users and memberships (factory_boy),
and documents and chunks in a given state written straight to the database, for tests that
need rows without running the pipeline."""

from __future__ import annotations

import hashlib
import uuid

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from documents.models import Chunk, Document, Membership, Status, Tenant
from documents.pipeline.fusion import text_hash

PASSWORD = "pass-1234-word"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Membership.Role.STAFF


def document_row(tenant, *, n: int = 0, status: str = Status.PROCESSING, **fields) -> Document:
    """An unsaved document row; by default as just uploaded (processing, queued)."""
    pk = fields.pop("id", None) or uuid.uuid4()
    defaults = {
        "id": pk,
        "tenant": tenant,
        "title": f"{tenant.slug} report {n}",
        "original_filename": f"{tenant.slug}-report-{n}.txt",
        "content_type": "text/plain",
        "size_bytes": 1000 + n,
        "sha256": hashlib.sha256(f"{tenant.slug}-{n}-{pk}".encode()).hexdigest(),
        "storage_key": f"tenants/{tenant.slug}/documents/{pk}/report.txt",
        "status": status,
        "stage": {Status.COMPLETED: "done", Status.PROCESSING: "queued"}.get(status, "embedding"),
        "finished_at": timezone.now() if status != Status.PROCESSING else None,
    }
    defaults.update(fields)
    return Document(**defaults)


def make_documents(tenant, count: int, *, batch_size: int = 5000, **fields) -> list[Document]:
    rows = [document_row(tenant, n=i, **fields) for i in range(count)]
    return Document.objects.bulk_create(rows, batch_size=batch_size)


def make_document(tenant, **fields) -> Document:
    document = document_row(tenant, **fields)
    document.save(force_insert=True)
    return document


def make_chunks(document, count: int) -> list[Chunk]:
    return Chunk.objects.bulk_create(
        [
            Chunk(
                document=document,
                index=i,
                text=f"Chunk {i} of {document.title}: the quick brown fox.",
                token_count=10 + i,
                page_start=i // 2 + 1,
                page_end=i // 2 + 1 + (i % 2),
                char_start=i * 100,
                char_end=i * 100 + 99,
                vector_id=f"{document.pk}#{i}",
                text_hash=text_hash(f"Chunk {i} of {document.title}: the quick brown fox."),
            )
            for i in range(count)
        ]
    )


def make_text_chunks(document, texts, *, pages=None) -> list[Chunk]:
    """Chunks with these texts (chunk i on page ``pages[i]``, else page i + 1), as a run
    writes them: vector id and text hash included."""
    return Chunk.objects.bulk_create(
        Chunk(
            document=document,
            index=i,
            text=text,
            token_count=len(text.split()),
            page_start=pages[i] if pages else i + 1,
            page_end=pages[i] if pages else i + 1,
            char_start=0,
            char_end=len(text),
            vector_id=f"{document.pk}#{i}",
            text_hash=text_hash(text),
        )
        for i, text in enumerate(texts)
    )


def insert_many_documents_sql(tenant, count: int, *, status: str = Status.COMPLETED) -> None:
    """``count`` rows in one INSERT ... SELECT generate_series (PostgreSQL): about a second for
    100,000 rows, where building the same number of model instances takes close to a minute.
    The columns come from the model (a template row's values), so new fields need no edit here;
    only the columns that must differ per row are SQL expressions of ``n``."""
    from django.db import connection

    template = document_row(tenant, status=status)
    per_row = {
        "id": "gen_random_uuid()",
        "title": "%(slug)s || ' report ' || n",
        "original_filename": "%(slug)s || '-report-' || n || '.txt'",
        "sha256": "md5(%(slug)s || n) || md5(n || %(slug)s)",
        "created_at": "now() - n * interval '1 second'",
    }
    columns, expressions, params = [], [], {"slug": tenant.slug, "count": count}
    for field in Document._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.name in per_row:
            expressions.append(per_row[field.name])
            continue
        value = field.get_db_prep_save(field.pre_save(template, add=True), connection)
        params[field.column] = value
        expressions.append(f"%({field.column})s")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO documents_document ({', '.join(columns)}) "
            f"SELECT {', '.join(expressions)} FROM generate_series(1, %(count)s) AS n",
            params,
        )
