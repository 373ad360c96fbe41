"""``manage.py load_demo``: the published demo logins go into a fresh embedded database, and
nowhere else unless asked for."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from documents.models import Membership, Tenant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def load_demo(*args) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def demo_loaded() -> bool:
    User = get_user_model()
    return (
        User.objects.filter(username="admin", is_superuser=True).exists()
        and Membership.objects.filter(user__username="staff", tenant__slug="demo").exists()
    )


def test_on_a_fresh_embedded_database_the_demo_is_loaded(settings):
    settings.PRODUCTION = False
    out = load_demo()
    assert demo_loaded()
    assert "admin / admin-demo-2026" in out


def test_in_a_deployment_the_demo_logins_are_not_loaded(settings):
    settings.PRODUCTION = True
    out = load_demo()
    assert not demo_loaded()
    assert not get_user_model().objects.exists() and not Tenant.objects.exists()
    assert "not loaded" in out and "--force" in out


def test_in_a_deployment_they_are_loaded_when_asked_for(settings):
    settings.PRODUCTION = True
    load_demo("--force")
    assert demo_loaded()


def test_an_embedded_database_with_users_is_left_alone(settings):
    settings.PRODUCTION = False
    load_demo()
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-by-its-owner")
    admin.save()
    out = load_demo()
    admin.refresh_from_db()
    assert admin.check_password("changed-by-its-owner")
    assert "not reloaded" in out


def test_an_embedded_database_with_someone_elses_users_gets_no_demo(settings):
    settings.PRODUCTION = False
    UserFactory(username="owner")
    load_demo()
    assert not demo_loaded()


def test_make_setup_goes_through_load_demo_and_passes_demo_1_as_force():
    plain = subprocess.run(
        ["make", "-n", "setup"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    asked = subprocess.run(
        ["make", "-n", "setup", "DEMO=1"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    assert "manage.py loaddata" not in plain
    assert "manage.py load_demo" in plain and "--force" not in plain
    assert "manage.py load_demo --force" in asked
