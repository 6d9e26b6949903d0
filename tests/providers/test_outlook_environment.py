"""What the environment says to an Outlook calendar's HTTP session: the proxy variables,
read once per host (requests would scan the whole environment on every request, a fifth of
an unchanged Graph poll's CPU, issue 15), and never a ~/.netrc password in place of the
bearer token. Against the local Graph fake."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from caldaemon.providers.outlook.session import GraphSession
from tests.fakes.microsoft import MicrosoftServer


@pytest.fixture
def server() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as started:
        yield started


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_proxy_the_environment_names_is_used_unless_no_proxy_names_the_host(
    server: MicrosoftServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(requests.exceptions.ProxyError):
        GraphSession(server.ca_path, 5).get(server.graph_url + "/me")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    answer = GraphSession(server.ca_path, 5).get(server.graph_url + "/me")
    assert answer.status_code == 401  # the fake answered: no proxy in between


def test_a_netrc_entry_for_the_host_does_not_replace_the_bearer_token(
    server: MicrosoftServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / ".netrc"
    host = server.graph_url.split("//", 1)[1].split("/", 1)[0].split(":", 1)[0]
    netrc.write_text(f"machine {host} login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    server.clear_requests()
    GraphSession(server.ca_path, 5).get(
        server.graph_url + "/me", headers={"Authorization": "Bearer not-a-real-token"}
    )
    [request] = server.requests
    assert request.headers["authorization"] == "Bearer not-a-real-token"
