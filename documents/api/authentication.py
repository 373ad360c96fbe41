"""Token authentication that a client cannot use to guess tokens.

DRF authenticates before it throttles, so a wrong token is answered 401 before any throttle
runs and guessing costs nothing. Here each wrong token counts against the client's address
(``FailedAuthThrottle``); past the ``failed_auth`` rate every token from that address is refused
with 429 until the window passes, a right one included, so a guess that lands is not told
apart."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from documents.api.throttles import FailedAuthThrottle


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        words = get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None  # no token: another authentication class may apply
        guard = FailedAuthThrottle()
        if guard.blocked(request):
            raise Throttled(wait=guard.wait())
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            guard.record_failure(request)
            raise
