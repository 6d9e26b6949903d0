"""``provider: outlook``: one Outlook / Microsoft 365 calendar through Microsoft Graph."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from caldaemon.fields import FilePath, Name, SecretPath
from caldaemon.providers.settings import CalendarSettings, RawProblem


class OutlookCalendar(CalendarSettings):
    provider: Literal["outlook"]
    tenant: Name
    client_id: Name
    user: Name = "me"
    calendar: str | None = None
    auth: Literal["device_code", "client_credentials"] = "device_code"
    client_secret_file: SecretPath | None = None
    client_secret_env: str | None = None
    certificate_file: SecretPath | None = None
    certificate_thumbprint: str | None = None
    token: FilePath | None = None
    authority: str | None = None
    graph_endpoint: str | None = None
    ca_file: SecretPath | None = None

    @classmethod
    def problems(cls, raw: Mapping[str, Any]) -> Iterator[RawProblem]:
        secrets = ("client_secret_file", "client_secret_env", "certificate_file")
        if raw.get("auth") == "client_credentials" and not any(raw.get(k) for k in secrets):
            yield (
                ("auth",),
                "client_credentials needs client_secret_file, client_secret_env or "
                "certificate_file",
            )
        if raw.get("certificate_file") and not raw.get("certificate_thumbprint"):
            yield ("certificate_file",), "a certificate needs certificate_thumbprint as well"
