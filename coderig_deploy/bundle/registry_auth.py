"""Anonymous bearer tokens for registry pulls (Docker Hub and other token-auth registries).

A registry that wants a token answers 401 with `WWW-Authenticate: Bearer realm=...,
service=...,scope=...`; the client GETs the realm with service and scope, takes the
`token` (or `access_token`) from the JSON it returns and sends the request again with
`Authorization: Bearer <token>` (the distribution spec's token flow, as `docker pull`
does without a login). Tokens are kept per (realm, service, scope) until they expire.

A token is never sent to another host: blob downloads are redirected to storage or a
CDN, and the redirect drops the Authorization header when the host changes (a signed
storage URL would also refuse a second credential). A realm on plain HTTP is followed
only for a registry reached over plain HTTP itself (a lab or site registry).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import IO, Any

AUTHORIZATION = "Authorization"
_PARAM = re.compile(r'(\w+)="([^"]*)"')
_TOKEN_TIMEOUT_S = 30.0
_DEFAULT_LIFETIME_S = 60.0  # the spec's default when the answer gives no expires_in


def parse_challenge(header: str) -> dict[str, str] | None:
    """The parameters of a `Bearer` challenge (realm required); None for any other scheme."""
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    found = dict(_PARAM.findall(params))
    return found if found.get("realm") else None


class TokenError(urllib.error.URLError):
    """The registry's token service refused or gave no token."""


class BearerTokenHandler(urllib.request.BaseHandler):
    """Answers a 401 Bearer challenge with an anonymous token, once per request."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def http_error_401(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                       headers: Message) -> Any:
        challenge = parse_challenge(headers.get("WWW-Authenticate", ""))
        if challenge is None or req.has_header(AUTHORIZATION):
            return None  # not a token registry, or the token was refused: the 401 stands
        realm = challenge["realm"]
        if urllib.parse.urlsplit(realm).scheme != "https" and urllib.parse.urlsplit(req.full_url).scheme != "http":
            raise TokenError(f"{req.host}: token realm {realm} is not https")
        token = self._token(realm, challenge.get("service", ""), challenge.get("scope", ""))
        fp.close()
        # req.headers only: the unredirected ones (Host, added on the first try) would follow a redirect
        retry = urllib.request.Request(req.full_url, data=req.data, method=req.get_method(),
                                       headers={**req.headers, AUTHORIZATION: f"Bearer {token}"})
        return self.parent.open(retry, timeout=getattr(req, "timeout", _TOKEN_TIMEOUT_S))

    def _token(self, realm: str, service: str, scope: str) -> str:
        key = (realm, service, scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
        query = urllib.parse.urlencode({k: v for k, v in (("service", service), ("scope", scope)) if v})
        url = f"{realm}{'&' if '?' in realm else '?'}{query}" if query else realm
        try:
            with urllib.request.urlopen(url, timeout=_TOKEN_TIMEOUT_S) as response:
                answer = json.loads(response.read(1 << 20))
        except urllib.error.HTTPError as exc:
            raise TokenError(f"token service {realm}: HTTP {exc.code} for {scope or 'no scope'}") from None
        except (ValueError, AttributeError):
            raise TokenError(f"token service {realm}: the answer is not JSON") from None
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError(f"token service {realm}: no token in the answer")
        lifetime = float(answer.get("expires_in") or _DEFAULT_LIFETIME_S)
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(0.0, lifetime - 10.0))
        return token


class SameHostAuthRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects, dropping the Authorization header when the host changes."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header(AUTHORIZATION)
        return new


OPENER = urllib.request.build_opener(BearerTokenHandler(), SameHostAuthRedirectHandler())


def urlopen(request: urllib.request.Request | str, timeout: float) -> Any:
    """urllib's urlopen, answering token challenges and keeping tokens to their host."""
    return OPENER.open(request, timeout=timeout)
