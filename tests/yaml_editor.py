"""A real editor's YAML support for tests of what a person sees while typing the config
(DESIGN.md §12): redhat-developer's yaml-language-server (what VS Code's YAML extension,
Neovim, Helix and others run), spoken to over stdio with the Language Server Protocol
(JSON-RPC messages framed by Content-Length headers, LSP 3.17 "Base Protocol").

Every session has a deadline; the server is killed when it ends. Where the server is not
installed (``npm install -g yaml-language-server``), :func:`yaml_editor` skips the test
with the reason.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

DEADLINE = 30.0  # seconds for one session; a cold start here takes about 1


class YamlEditor:
    """One running yaml-language-server with one open document."""

    def __init__(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        self._process = process
        self._deadline = deadline
        self._buffer = bytearray()
        self._next_id = 0
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self._process.stdin is not None
        self._process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self._process.stdin.flush()

    def _receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                headers = bytes(self._buffer[:end]).decode("ascii").split("\r\n")
                length = next(
                    int(h.split(":")[1]) for h in headers if h.lower().startswith("content-length")
                )
                if len(self._buffer) >= end + 4 + length:
                    body = bytes(self._buffer[end + 4 : end + 4 + length])
                    del self._buffer[: end + 4 + length]
                    message: dict[str, Any] = json.loads(body)
                    return message
            left = self._deadline - time.monotonic()
            ready, _, _ = select.select([self._process.stdout], [], [], max(0.0, left))
            chunk = os.read(self._process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                pytest.fail(f"yaml-language-server said nothing more within {DEADLINE:.0f} s")
            self._buffer.extend(chunk)

    def _answer_server(self, message: dict[str, Any]) -> None:
        """The server's own requests: its settings (validation on, no schema store, which
        would fetch schemas from the network), else an empty answer."""
        if message.get("method") == "workspace/configuration":
            settings = {"validate": True, "hover": True, "schemaStore": {"enable": False}}
            result: Any = [settings for _ in message["params"]["items"]]
        else:
            result = None
        self._send({"id": message["id"], "result": result})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self._next_id += 1
        asked = self._next_id
        self._send({"id": asked, "method": method, "params": params})
        while True:
            message = self._receive()
            if message.get("id") == asked and "method" not in message:
                return message.get("result")
            self._note(message)

    def _note(self, message: dict[str, Any]) -> None:
        if "id" in message and "method" in message:
            self._answer_server(message)
        elif message.get("method") == "textDocument/publishDiagnostics":
            self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]

    def open(self, path: Path) -> list[dict[str, Any]]:
        """Open ``path`` as the editor would; its diagnostics (problems) once checked."""
        uri = path.resolve().as_uri()
        document = {"uri": uri, "languageId": "yaml", "version": 1, "text": path.read_text()}
        self._send({"method": "textDocument/didOpen", "params": {"textDocument": document}})
        while uri not in self.diagnostics:
            self._note(self._receive())
        return self.diagnostics[uri]

    def hover(self, path: Path, line: int, character: int) -> str:
        """The text the editor shows when the pointer rests on a place (0-based)."""
        result = self.request(
            "textDocument/hover",
            {
                "textDocument": {"uri": path.resolve().as_uri()},
                "position": {"line": line, "character": character},
            },
        )
        contents = (result or {}).get("contents", "")
        return str(contents.get("value", "") if isinstance(contents, dict) else contents)


@contextmanager
def yaml_editor(folder: Path) -> Iterator[YamlEditor]:
    """A yaml-language-server whose workspace is ``folder``; skips the test without it."""
    executable = shutil.which("yaml-language-server")
    if executable is None:
        pytest.skip("yaml-language-server is not installed (npm install -g yaml-language-server)")
    process = subprocess.Popen(
        [executable, "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        bufsize=0,
    )
    editor = YamlEditor(process, time.monotonic() + DEADLINE)
    try:
        capabilities = {"workspace": {"configuration": True}, "textDocument": {"hover": {}}}
        editor.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": folder.resolve().as_uri(),
                "capabilities": capabilities,
            },
        )
        editor._send({"method": "initialized", "params": {}})
        yield editor
    finally:
        process.kill()
        process.wait()
