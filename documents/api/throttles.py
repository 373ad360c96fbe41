"""API throttles (DRF's, with rates read from settings at request time).

``API_THROTTLE_RATES`` holds one rate per scope, None to switch a scope off: ``user`` for every
authenticated request, ``ingest`` for uploads on top of it, ``anon`` for requests without
credentials, and ``failed_auth`` for wrong tokens per client address (see
``authentication.py``). DRF binds its rate table when it is imported; reading the setting
each time lets a deployment's environment, and the tests, decide."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from backoffice.client_address import client_ip


class _RateFromSettings:
    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_ip(request)


class UserThrottle(_RateFromSettings, UserRateThrottle):
    scope = "user"


class AnonThrottle(_RateFromSettings, AnonRateThrottle):
    scope = "anon"


class IngestThrottle(_RateFromSettings, UserRateThrottle):
    """Uploads store a file and queue work, so they get a budget of their own."""

    scope = "ingest"


class FailedAuthThrottle(_RateFromSettings, SimpleRateThrottle):
    """Counts wrong credentials per client address; once over the rate, the address is refused
    until the oldest failure leaves the window, whatever it sends."""

    scope = "failed_auth"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _history(self, request) -> list[float]:
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        return [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def blocked(self, request) -> bool:
        if self.rate is None:
            return False
        self.history = self._history(request)
        return len(self.history) >= self.num_requests

    def record_failure(self, request) -> None:
        if self.rate is None:
            return
        self.history = self._history(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
