"""Fake Microsoft identity platform (Entra ID, v2.0 endpoints) for tests.

Implements exactly what MSAL Python needs for the flows caldaemon uses:

* ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` (tenant discovery;
  MSAL reads ``authorization_endpoint``, ``token_endpoint`` and
  ``device_authorization_endpoint`` from it, see ``msal/authority.py``),
* ``GET  /{tenant}/discovery/v2.0/keys`` (JWKS for the tokens we sign),
* ``POST /{tenant}/oauth2/v2.0/devicecode`` (device authorization request),
* ``POST /{tenant}/oauth2/v2.0/token`` with the ``device_code``,
  ``refresh_token`` and ``client_credentials`` grants.

References:
https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
https://learn.microsoft.com/entra/identity-platform/reference-error-codes

Instance discovery (``https://login.microsoftonline.com/common/discovery/instance``)
is not served: MSAL must be built with ``instance_discovery=False``.

This module holds no lock of its own; every public method must be called
with the lock passed to :class:`Identity` held (``MicrosoftServer`` does so).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# What an admin-consented ".default" delegated request yields for our fake apps.
DEFAULT_DELEGATED_PERMISSIONS = ("Calendars.ReadWrite", "Mail.Send", "User.Read")
# Application permissions every registered confidential client is granted.
APPLICATION_PERMISSIONS = ("Calendars.ReadWrite", "Mail.Send", "User.Read.All")
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_JSON_TYPE = "application/json; charset=utf-8"
_NO_STORE = (("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache"))


@dataclass(frozen=True)
class Reply:
    """An HTTP answer produced by the fake services."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = _JSON_TYPE,
    ) -> Reply:
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, (("Content-Type", content_type), *headers), data)


@dataclass
class User:
    oid: str
    upn: str
    display_name: str
    # Refresh tokens with a serial below this were revoked (see revoke_refresh_tokens).
    min_refresh_serial: int = 0
    revocation_code: int = 50173


@dataclass
class Client:
    client_id: str
    secret: str | None = None
    certificate: x509.Certificate | None = None
    name: str = ""

    @property
    def confidential(self) -> bool:
        return self.secret is not None or self.certificate is not None


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    scopes: ScopeRequest
    serial: int
    expires_at: float
    approved_oid: str | None = None
    declined: bool = False
    redeemed: bool = False


@dataclass
class RefreshGrant:
    client_id: str
    user_oid: str
    scopes: ScopeRequest
    serial: int


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed ``scope`` parameter; every resource scope targets Graph."""

    raw: tuple[str, ...]
    permissions: tuple[str, ...]
    oidc: frozenset[str]

    @property
    def is_default(self) -> bool:
        return any(p.lower() == ".default" for p in self.permissions)

    def granted_delegated(self) -> tuple[str, ...]:
        if self.is_default:
            return DEFAULT_DELEGATED_PERMISSIONS
        return self.permissions

    def response_scope(self) -> str:
        # Echo what was asked for (minus offline_access, which AAD never lists)
        # so MSAL's cache, which keys access tokens on the returned scopes,
        # finds the token again for the same request.  ".default" expands to
        # the consented permissions, as AAD does.
        if self.is_default:
            oidc = sorted(self.oidc - {"offline_access"})
            return " ".join([*DEFAULT_DELEGATED_PERMISSIONS, *oidc])
        return " ".join(s for s in self.raw if s.lower() != "offline_access")


@dataclass(frozen=True)
class AccessGrant:
    """What Graph learns from a valid bearer token."""

    client_id: str
    user_oid: str | None
    permissions: frozenset[str]  # lower-cased scp (delegated) or roles (app)

    @property
    def app_only(self) -> bool:
        return self.user_oid is None

    def allows(self, *permissions: str) -> bool:
        return any(p.lower() in self.permissions for p in permissions)


class IdentityError(Exception):
    """An AAD error response: ``error``, an AADSTS code and a message."""

    def __init__(
        self,
        status: int,
        error: str,
        code: int,
        message: str,
        *,
        suberror: str | None = None,
    ) -> None:
        super().__init__(f"{error}: AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message
        self.suberror = suberror


@functools.lru_cache(maxsize=1)
def _signing_key() -> rsa.RSAPrivateKey:
    # One key per process: generating RSA keys is the slowest part of start-up.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _key_id() -> str:
    der = _signing_key().public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _b64url(hashlib.sha1(der).digest())


def _first(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


class Identity:
    """State and request handling of the fake identity platform."""

    def __init__(self, tenant: str, lock: threading.RLock) -> None:
        self.tenant = tenant
        self.base_url = ""
        self.access_token_lifetime = 3600
        self.device_code_lifetime = 900
        self._lock = lock
        self._users: dict[str, User] = {}
        self._clients: dict[str, Client] = {}
        self._device_codes: dict[str, DeviceCode] = {}
        self._refresh_tokens: dict[str, RefreshGrant] = {}
        self._consents: set[tuple[str, str]] = set()
        self._serials = itertools.count(1)
        self._min_access_serial = 0

    # -- seeding / inspection -------------------------------------------------

    def add_user(self, upn: str, user_id: str | None = None) -> User:
        if self.find_user(upn) is not None:
            raise ValueError(f"user {upn!r} already exists")
        oid = user_id or str(uuid.uuid4())
        name = upn.split("@", 1)[0].replace(".", " ").title()
        user = User(oid=oid, upn=upn, display_name=name)
        self._users[oid] = user
        return user

    def find_user(self, key: str) -> User | None:
        """Look a user up by object id or (case-insensitive) UPN."""
        if key in self._users:
            return self._users[key]
        lowered = key.lower()
        return next((u for u in self._users.values() if u.upn.lower() == lowered), None)

    def user(self, key: str) -> User:
        found = self.find_user(key)
        if found is None:
            raise KeyError(f"no such user: {key!r}")
        return found

    def register_client(
        self,
        client_id: str,
        secret: str | None,
        certificate: str | bytes | x509.Certificate | None,
        name: str | None,
    ) -> None:
        if isinstance(certificate, str):
            certificate = certificate.encode("ascii")
        if isinstance(certificate, bytes):
            certificate = x509.load_pem_x509_certificate(certificate)
        self._clients[client_id] = Client(client_id, secret, certificate, name or client_id)

    def approve_device_code(self, user: User, user_code: str | None) -> None:
        pending = self._pending_device_code(user_code)
        pending.approved_oid = user.oid
        # Signing in through the device code page also consents to the app.
        self._consents.add((user.oid, pending.client_id))

    def decline_device_code(self, user_code: str | None) -> None:
        self._pending_device_code(user_code).declined = True

    def revoke_refresh_tokens(self, user: User, code: Literal[50173, 70008]) -> None:
        user.min_refresh_serial = next(self._serials)
        user.revocation_code = code

    def revoke_consent(self, client_id: str) -> None:
        self._consents = {c for c in self._consents if c[1] != client_id}

    def expire_access_tokens(self) -> None:
        self._min_access_serial = next(self._serials)

    def mint_access_token(
        self, client_id: str, user: User | None, permissions: Sequence[str]
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": GRAPH_RESOURCE,
            "iss": f"{self.base_url}/{self.tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.access_token_lifetime,
            "appid": client_id,
            "tid": self.tenant,
            "ver": "1.0",
            "uti": secrets.token_urlsafe(16),
            "xms_seq": next(self._serials),
        }
        if user is None:
            principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client_id}"))
            claims.update(oid=principal, sub=principal, idtyp="app", roles=list(permissions))
        else:
            claims.update(
                oid=user.oid,
                sub=_b64url(hashlib.sha256(f"{user.oid}:{client_id}".encode()).digest()),
                idtyp="user",
                upn=user.upn,
                unique_name=user.upn,
                name=user.display_name,
                scp=" ".join(permissions),
            )
        return jwt.encode(claims, _signing_key(), algorithm="RS256", headers={"kid": _key_id()})

    def validate_access_token(self, token: str) -> AccessGrant | str:
        """Return the grant, or the message Graph puts in its 401 answer."""
        if token.count(".") != 2:
            return (
                "IDX14100: JWT is not well formed, there are no dots (.).\n"
                "The token needs to be in JWS or JWE Compact Serialization Format."
            )
        try:
            claims = jwt.decode(
                token,
                _signing_key().public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, GRAPH_APP_ID],
                options={"require": ["exp", "iat", "appid"]},
            )
        except jwt.ExpiredSignatureError:
            return "Lifetime validation failed, the token is expired."
        except jwt.InvalidTokenError:
            return "Access token validation failure. Invalid audience or signature."
        if int(claims.get("xms_seq", 0)) < self._min_access_serial:
            return "Lifetime validation failed, the token is expired."
        if claims.get("idtyp") == "app":
            return AccessGrant(
                claims["appid"], None, frozenset(r.lower() for r in claims.get("roles", []))
            )
        if claims.get("oid") not in self._users:
            return "Access token validation failure. The user does not exist."
        scp = str(claims.get("scp", "")).split()
        return AccessGrant(claims["appid"], claims["oid"], frozenset(s.lower() for s in scp))

    # -- HTTP ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        segments: Sequence[str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply | None:
        """Answer an identity request, or return None if the path is not ours."""
        if len(segments) != 4:
            return None
        tenant, *rest = segments
        route = "/".join(rest).lower()
        handlers = {
            ("GET", "v2.0/.well-known/openid-configuration"): self._openid_configuration,
            ("GET", "discovery/v2.0/keys"): self._keys,
            ("POST", "oauth2/v2.0/devicecode"): self._device_authorization,
            ("POST", "oauth2/v2.0/token"): self._token,
        }
        handler = handlers.get((method, route))
        if handler is None:
            return None
        correlation_id = headers.get("client-request-id") or str(uuid.uuid4())
        try:
            if tenant.lower() not in self._tenant_aliases():
                raise IdentityError(
                    400,
                    "invalid_tenant" if method == "GET" else "invalid_request",
                    90002,
                    f"Tenant '{tenant}' not found. Check to make sure you have the "
                    "correct tenant ID and are signing into the correct cloud.",
                )
            return handler(tenant, headers, body)
        except IdentityError as exc:
            return self.error_reply(exc, correlation_id)

    def error_reply(self, exc: IdentityError, correlation_id: str) -> Reply:
        """Shape an error like AAD does (``error_description`` embeds ids)."""
        trace_id = str(uuid.uuid4())
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        payload: dict[str, Any] = {
            "error": exc.error,
            "error_description": (
                f"AADSTS{exc.code}: {exc.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {now}"
            ),
            "error_codes": [exc.code],
            "timestamp": now,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.base_url}/error?code={exc.code}",
        }
        if exc.suberror:
            payload["suberror"] = exc.suberror
        extra: tuple[tuple[str, str], ...] = ()
        if exc.status == 401:
            extra = (("WWW-Authenticate", 'Basic realm=""'),)
        return Reply.json(exc.status, payload, (*_NO_STORE, *extra))

    def _tenant_aliases(self) -> set[str]:
        return {self.tenant.lower(), "common", "organizations"}

    def _endpoint(self, tenant: str, suffix: str) -> str:
        return f"{self.base_url}/{tenant}/{suffix}"

    def _openid_configuration(self, tenant: str, _h: Mapping[str, str], _b: bytes) -> Reply:
        # Mirrors https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration;
        # for /common the issuer keeps the literal "{tenantid}" placeholder.
        tenant_in_issuer = self.tenant if tenant.lower() == self.tenant.lower() else "{tenantid}"
        host = self.base_url.split("://", 1)[-1]
        document = {
            "token_endpoint": self._endpoint(tenant, "oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": self._endpoint(tenant, "discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.base_url}/{tenant_in_issuer}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": self._endpoint(tenant, "oauth2/v2.0/authorize"),
            "device_authorization_endpoint": self._endpoint(tenant, "oauth2/v2.0/devicecode"),
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username",
                "name", "tid", "ver", "oid", "email",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": host,
            "cloud_graph_host_name": host,
            "msgraph_host": host,
        }
        return Reply.json(200, document)

    def _keys(self, _t: str, _h: Mapping[str, str], _b: bytes) -> Reply:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(_signing_key().public_key()))
        jwk.update(kid=_key_id(), use="sig", issuer=f"{self.base_url}/{self.tenant}/v2.0")
        return Reply.json(200, {"keys": [jwk]})

    # -- device authorization -------------------------------------------------------

    def _device_authorization(self, _t: str, _h: Mapping[str, str], body: bytes) -> Reply:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        client_id = _require(form, "client_id")
        scopes = self._parse_scopes(_require(form, "scope"))
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        entry = DeviceCode(
            device_code=secrets.token_urlsafe(48),
            user_code=user_code,
            client_id=client_id,
            scopes=scopes,
            serial=next(self._serials),
            expires_at=time.time() + self.device_code_lifetime,
        )
        self._device_codes[entry.device_code] = entry
        verification_uri = f"{self.base_url}/devicelogin"
        return Reply.json(
            200,
            {
                "user_code": user_code,
                "device_code": entry.device_code,
                "verification_uri": verification_uri,
                "expires_in": self.device_code_lifetime,
                # Real AAD says 5; 1 keeps MSAL's polling loop short in tests.
                "interval": 1,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} "
                    f"and enter the code {user_code} to authenticate."
                ),
            },
            _NO_STORE,
        )

    def _pending_device_code(self, user_code: str | None) -> DeviceCode:
        now = time.time()
        candidates = [
            d
            for d in self._device_codes.values()
            if d.approved_oid is None and not d.declined and not d.redeemed and d.expires_at > now
            and (user_code is None or d.user_code == user_code.upper())
        ]
        if not candidates:
            raise LookupError("no pending device code" + (f" {user_code!r}" if user_code else ""))
        return max(candidates, key=lambda d: d.serial)

    # -- token endpoint ---------------------------------------------------------------

    def _token(self, tenant: str, headers: Mapping[str, str], body: bytes) -> Reply:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        grant_type = _require(form, "grant_type")
        client = self._authenticate_client(tenant, form, headers)
        if grant_type == DEVICE_CODE_GRANT:
            payload = self._device_code_grant(client, form)
        elif grant_type == "refresh_token":
            payload = self._refresh_token_grant(client, form)
        elif grant_type == "client_credentials":
            payload = self._client_credentials_grant(client, form)
        else:
            raise IdentityError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        return Reply.json(200, payload, _NO_STORE)

    def _authenticate_client(
        self, tenant: str, form: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> Client:
        """Authenticate per RFC 6749 section 2.3 (body or HTTP Basic) or RFC 7523."""
        basic_id, basic_secret = _basic_credentials(headers.get("authorization", ""))
        client_id = _first(form, "client_id") or basic_id
        if not client_id:
            raise _missing_parameter("client_id")
        secret = _first(form, "client_secret") or basic_secret
        assertion = _first(form, "client_assertion")
        client = self._clients.get(client_id)
        if client is None:
            if secret or assertion:
                raise IdentityError(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the "
                    f"directory '{self.tenant}'.",
                )
            # Unregistered ids are treated as public client applications.
            return Client(client_id)
        if not client.confidential:
            if secret or assertion:
                raise IdentityError(
                    401,
                    "invalid_client",
                    700025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' "
                    "should be presented.",
                )
            return client
        if secret is not None:
            if client.secret is None or not secrets.compare_digest(secret, client.secret):
                raise IdentityError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID, for a "
                    f"secret added to app '{client_id}'.",
                )
            return client
        if assertion is not None:
            if _first(form, "client_assertion_type") != JWT_BEARER_ASSERTION:
                raise IdentityError(
                    400,
                    "invalid_request",
                    50027,
                    "client_assertion_type must be "
                    f"'{JWT_BEARER_ASSERTION}'.",
                )
            self._check_client_assertion(client, assertion, tenant)
            return client
        raise IdentityError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' "
            "or 'client_secret'.",
        )

    def _check_client_assertion(self, client: Client, assertion: str, tenant: str) -> None:
        """Validate a certificate credential (RFC 7523 client assertion).

        See https://learn.microsoft.com/entra/identity-platform/certificate-credentials:
        ``aud`` is the token endpoint, ``iss`` and ``sub`` are the client id, and
        the header's ``x5t``/``x5t#S256`` names the registered certificate.
        """
        audiences = [
            self._endpoint(alias, "oauth2/v2.0/token") for alias in (tenant, self.tenant)
        ]
        try:
            header = jwt.get_unverified_header(assertion)
            if client.certificate is None:
                claims = jwt.decode(
                    assertion,
                    options={
                        "verify_signature": False,
                        "verify_exp": True,
                        "verify_aud": True,
                        "require": ["exp", "aud"],
                    },
                    audience=audiences,
                )
            else:
                _check_thumbprint(client.certificate, header)
                claims = jwt.decode(
                    assertion,
                    client.certificate.public_key(),  # type: ignore[arg-type]
                    algorithms=["RS256", "PS256"],
                    audience=audiences,
                    options={"require": ["exp", "aud"]},
                )
        except jwt.ExpiredSignatureError as exc:
            raise IdentityError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise IdentityError(
                401,
                "invalid_client",
                700212,
                f"The client assertion audience must be one of {audiences}.",
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise IdentityError(
                401, "invalid_client", 700027, "Client assertion failed signature validation."
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise IdentityError(
                401, "invalid_client", 50027, f"JWT token is invalid or malformed: {exc}."
            ) from exc
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise IdentityError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )

    def _device_code_grant(self, client: Client, form: Mapping[str, list[str]]) -> dict[str, Any]:
        code = _require(form, "device_code")
        entry = self._device_codes.get(code)
        if entry is None or entry.client_id != client.client_id:
            raise IdentityError(
                400,
                "invalid_grant",
                70000,
                "The provided value for the input parameter 'device_code' is not valid.",
            )
        if entry.redeemed:
            raise IdentityError(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new "
                "valid code or use an existing refresh token.",
            )
        if entry.declined:
            raise IdentityError(
                400, "authorization_declined", 70000, "The user has declined authorization."
            )
        if time.time() >= entry.expires_at:
            raise IdentityError(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. "
                "This device code has expired.",
            )
        if entry.approved_oid is None:
            raise IdentityError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        entry.redeemed = True
        return self._user_token_response(
            client, self._users[entry.approved_oid], entry.scopes, form
        )

    def _refresh_token_grant(self, client: Client, form: Mapping[str, list[str]]) -> dict[str, Any]:
        grant = self._refresh_tokens.get(_require(form, "refresh_token"))
        if grant is None or grant.client_id != client.client_id:
            raise IdentityError(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
                suberror="bad_token",
            )
        user = self._users.get(grant.user_oid)
        if user is None:
            raise IdentityError(
                400, "invalid_grant", 50034, "The user account does not exist in the directory."
            )
        if grant.serial < user.min_refresh_serial:
            if user.revocation_code == 70008:
                message = (
                    "The provided authorization code or refresh token has expired due to "
                    "inactivity. Send a new interactive authorization request for this user "
                    "and resource."
                )
            else:
                message = (
                    "The provided grant has expired due to it being revoked, a fresh auth "
                    "token is needed. The user might have changed or reset their password."
                )
            raise IdentityError(
                400, "invalid_grant", user.revocation_code, message, suberror="bad_token"
            )
        if (user.oid, client.client_id) not in self._consents:
            raise IdentityError(
                400,
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with "
                f"ID '{client.client_id}'. Send an interactive authorization request for "
                "this user and resource.",
                suberror="consent_required",
            )
        requested = _first(form, "scope")
        scopes = self._parse_scopes(requested) if requested else grant.scopes
        return self._user_token_response(client, user, scopes, form)

    def _client_credentials_grant(
        self, client: Client, form: Mapping[str, list[str]]
    ) -> dict[str, Any]:
        if not client.confidential:
            raise IdentityError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        raw = _require(form, "scope")
        scopes = self._parse_scopes(raw)
        # The client credentials flow only takes "{resource}/.default"; see
        # https://learn.microsoft.com/entra/identity-platform/scopes-oidc#the-default-scope
        if scopes.oidc or len(scopes.permissions) != 1 or not scopes.is_default:
            raise IdentityError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {raw} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        token = self.mint_access_token(client.client_id, None, APPLICATION_PERMISSIONS)
        # AAD's client-credentials answer carries no "scope" and no refresh token.
        return {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": token,
        }

    def _user_token_response(
        self,
        client: Client,
        user: User,
        scopes: ScopeRequest,
        form: Mapping[str, list[str]],
    ) -> dict[str, Any]:
        permissions = scopes.granted_delegated()
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scopes.response_scope(),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": self.mint_access_token(client.client_id, user, permissions),
        }
        if "offline_access" in scopes.oidc:
            refresh_token = secrets.token_urlsafe(64)
            self._refresh_tokens[refresh_token] = RefreshGrant(
                client.client_id, user.oid, scopes, next(self._serials)
            )
            response["refresh_token"] = refresh_token
        if "openid" in scopes.oidc:
            response["id_token"] = self._id_token(client, user)
        if _first(form, "client_info") == "1":
            # MSAL sends client_info=1 and builds the account's home_account_id
            # ("{uid}.{utid}") from this; see msal/token_cache.py.
            info = json.dumps({"uid": user.oid, "utid": self.tenant}).encode("utf-8")
            response["client_info"] = _b64url(info)
        return response

    def _id_token(self, client: Client, user: User) -> str:
        now = int(time.time())
        claims = {
            "aud": client.client_id,
            "iss": f"{self.base_url}/{self.tenant}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.display_name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "sub": _b64url(hashlib.sha256(f"{user.oid}:{client.client_id}".encode()).digest()),
            "tid": self.tenant,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        return jwt.encode(claims, _signing_key(), algorithm="RS256", headers={"kid": _key_id()})

    def _parse_scopes(self, raw: str) -> ScopeRequest:
        tokens = tuple(raw.split())
        if not tokens:
            raise _missing_parameter("scope")
        oidc: set[str] = set()
        permissions: list[str] = []
        for scope in tokens:
            if scope.lower() in OIDC_SCOPES:
                oidc.add(scope.lower())
                continue
            resource, _, permission = scope.rpartition("/")
            if resource and resource.rstrip("/").lower() not in (GRAPH_RESOURCE, GRAPH_APP_ID):
                raise IdentityError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant "
                    f"named {self.tenant}.",
                )
            permissions.append(permission)
        return ScopeRequest(tokens, tuple(permissions), frozenset(oidc))


def _require(form: Mapping[str, list[str]], name: str) -> str:
    value = _first(form, name)
    if not value:
        raise _missing_parameter(name)
    return value


def _missing_parameter(name: str) -> IdentityError:
    return IdentityError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _basic_credentials(header: str) -> tuple[str | None, str | None]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value.strip()).decode("utf-8")
    except ValueError:
        return None, None
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


def _check_thumbprint(certificate: x509.Certificate, header: Mapping[str, Any]) -> None:
    expected = {
        "x5t#S256": _b64url(certificate.fingerprint(hashes.SHA256())),
        "x5t": _b64url(certificate.fingerprint(hashes.SHA1())),
    }
    for name, value in expected.items():
        presented = header.get(name)
        if presented is not None and str(presented).rstrip("=") == value:
            return
    raise jwt.InvalidSignatureError("no registered certificate matches the x5t thumbprint")
