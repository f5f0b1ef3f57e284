"""A bare HTTP/1.1 client on a socket, for checking faults exactly as they appear on the wire."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes  # everything received after the head, until the server closed

    @property
    def declared_length(self) -> int:
        return int(self.headers["content-length"])


def send(
    url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    head = {
        "Host": f"{parts.hostname}:{parts.port}",
        "Authorization": "Bearer sk-test",
        "Connection": "close",
    }
    head.update(headers or {})
    if body:
        head["Content-Length"] = str(len(body))
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode() + body)
    return sock


def read_until_closed(sock: socket.socket) -> RawResponse:
    """Read until the server closes; raises ConnectionResetError if it resets instead."""
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return RawResponse(int(status_line.split()[1]), headers, body)
