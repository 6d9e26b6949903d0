"""Client authentication at the fake Microsoft identity platform's token endpoint.

Secrets in the body or as HTTP Basic (RFC 6749 section 2.3), or a certificate
credential as a client assertion (RFC 7523), see
https://learn.microsoft.com/entra/identity-platform/certificate-credentials
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .identity_model import (
    JWT_BEARER_ASSERTION,
    Client,
    IdentityError,
    b64url,
    form_value,
    missing_parameter,
)

__all__ = ["authenticate_client"]


def authenticate_client(
    clients: Mapping[str, Client],
    directory: str,
    audiences: list[str],
    form: Mapping[str, list[str]],
    headers: Mapping[str, str],
) -> Client:
    """Authenticate per RFC 6749 section 2.3 (body or HTTP Basic) or RFC 7523.

    ``clients`` are the registered apps of tenant ``directory``; a client
    assertion must be addressed to one of ``audiences`` (token endpoint URLs).
    """
    basic_id, basic_secret = _basic_credentials(headers.get("authorization", ""))
    client_id = form_value(form, "client_id") or basic_id
    if not client_id:
        raise missing_parameter("client_id")
    secret = form_value(form, "client_secret") or basic_secret
    assertion = form_value(form, "client_assertion")
    client = clients.get(client_id)
    if client is None:
        if secret or assertion:
            raise IdentityError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{directory}'.",
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
        if form_value(form, "client_assertion_type") != JWT_BEARER_ASSERTION:
            raise IdentityError(
                400,
                "invalid_request",
                50027,
                f"client_assertion_type must be '{JWT_BEARER_ASSERTION}'.",
            )
        _check_client_assertion(client, assertion, audiences)
        return client
    raise IdentityError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' "
        "or 'client_secret'.",
    )


def _check_client_assertion(client: Client, assertion: str, audiences: list[str]) -> None:
    """Validate a certificate credential (RFC 7523 client assertion).

    See https://learn.microsoft.com/entra/identity-platform/certificate-credentials:
    ``aud`` is the token endpoint, ``iss`` and ``sub`` are the client id, and
    the header's ``x5t``/``x5t#S256`` names the registered certificate.
    """
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
        "x5t#S256": b64url(certificate.fingerprint(hashes.SHA256())),
        "x5t": b64url(certificate.fingerprint(hashes.SHA1())),
    }
    for name, value in expected.items():
        presented = header.get(name)
        if presented is not None and str(presented).rstrip("=") == value:
            return
    raise jwt.InvalidSignatureError("no registered certificate matches the x5t thumbprint")
