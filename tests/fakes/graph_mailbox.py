"""Mailbox resources in the fake Microsoft Graph: the user, its calendars, ``POST sendMail``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .graph_common import GraphError, GraphRequest, JsonObject
from .graph_model import Calendar, Mailbox
from .graph_time import format_instant
from .identity_model import User

if TYPE_CHECKING:
    from .microsoft_identity import Identity


def addressed_mailbox(identity: Identity, path: str, headers: Mapping[str, str]) -> str | None:
    """The mailbox (user object id) a request path under /v1.0 works on; None when it
    names none or its token is not valid."""
    segments = [unquote(s) for s in path.strip("/").split("/") if s]
    first = segments[0].lower() if segments else ""
    if first == "me":
        token = headers.get("authorization", "").partition(" ")[2].strip()
        grant = identity.validate_access_token(token) if token else None
        return None if grant is None or isinstance(grant, str) else grant.user_oid
    if first == "users" and len(segments) >= 2:
        user = identity.find_user(segments[1])
        return user.oid if user is not None else None
    return None


__all__ = ["addressed_mailbox", "calendar_resource", "send_mail", "user_resource"]


def send_mail(sent_mail: list[JsonObject], mailbox: Mailbox, request: GraphRequest) -> None:
    """sendMail, https://learn.microsoft.com/graph/api/user-sendmail: kept in ``sent_mail``."""
    body = request.json_body()
    message = body.get("message")
    if not isinstance(message, dict):
        raise GraphError(400, "ErrorInvalidRequest", "The 'message' parameter is required.")
    recipients = [
        *message.get("toRecipients", []),
        *message.get("ccRecipients", []),
        *message.get("bccRecipients", []),
    ]
    if not recipients:
        raise GraphError(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it "
            "contains no recipients.",
        )
    sent_mail.append(
        {
            "from": mailbox.user.upn,
            "message": message,
            "saveToSentItems": body.get("saveToSentItems", True),
            "sentDateTime": format_instant(datetime.now(UTC)),
        }
    )


def user_resource(user: User, base_url: str) -> JsonObject:
    return {
        "@odata.context": f"{base_url}/$metadata#users/$entity",
        "id": user.oid,
        "displayName": user.display_name,
        "userPrincipalName": user.upn,
        "mail": user.upn,
    }


def calendar_resource(mailbox: Mailbox, calendar: Calendar) -> JsonObject:
    return {
        "id": calendar.id,
        "name": calendar.name,
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": calendar.is_default,
        "changeKey": calendar.change_key,
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": calendar.can_edit,
        "isRemovable": not calendar.is_default,
        "isTallyingResponses": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "owner": {"name": mailbox.user.display_name, "address": mailbox.user.upn},
    }
