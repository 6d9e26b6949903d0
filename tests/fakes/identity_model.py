"""Users, clients, grants and errors of the fake Microsoft identity platform.

Error codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "APPLICATION_PERMISSIONS",
    "DEFAULT_DELEGATED_PERMISSIONS",
    "DEVICE_CODE_GRANT",
    "GRAPH_APP_ID",
    "GRAPH_RESOURCE",
    "JWT_BEARER_ASSERTION",
    "NO_STORE",
    "OIDC_SCOPES",
    "AccessGrant",
    "Client",
    "DeviceCode",
    "IdentityError",
    "RefreshGrant",
    "ScopeRequest",
    "User",
    "b64url",
    "form_required",
    "form_value",
    "key_id",
    "missing_parameter",
    "signing_key",
]

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# What an admin-consented ".default" delegated request yields for our fake apps.
DEFAULT_DELEGATED_PERMISSIONS = ("Calendars.ReadWrite", "Mail.Send", "User.Read")
# Application permissions every registered confidential client is granted.
APPLICATION_PERMISSIONS = ("Calendars.ReadWrite", "Mail.Send", "User.Read.All")
NO_STORE = (("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache"))


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
def signing_key() -> rsa.RSAPrivateKey:
    # One key per process: generating RSA keys is the slowest part of start-up.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id() -> str:
    der = (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return b64url(hashlib.sha1(der).digest())


def form_value(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def form_required(form: Mapping[str, list[str]], name: str) -> str:
    value = form_value(form, name)
    if not value:
        raise missing_parameter(name)
    return value


def missing_parameter(name: str) -> IdentityError:
    return IdentityError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )
