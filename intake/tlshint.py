"""Which setting to check when a TLS handshake fails because the port speaks the other TLS mode."""

from __future__ import annotations

#: Ports whose servers start TLS at once, and ports whose servers start in plain text (STARTTLS).
IMPLICIT_TLS_PORTS = frozenset({993, 465, 995})
PLAIN_START_PORTS = frozenset({143, 25, 587, 110})


#: What OpenSSL says when it gets plain text where a TLS record should be.
_PLAIN_TEXT_SEEN = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure", "http request",
                    "PACKET_LENGTH_TOO_LONG", "unknown protocol")


def tls_port_hint(section: str, tls: str, port: int, exc: BaseException | None = None) -> str:
    """'; check mailbox.tls: tls = "starttls" for port 143?' when ``tls`` does not fit ``port`` (a well-known
    port, or a TLS error saying the server answered in plain text), else ""."""
    plain_text = exc is not None and any(w in str(exc) for w in _PLAIN_TEXT_SEEN)
    if tls == "ssl" and (port in PLAIN_START_PORTS or plain_text):
        return f'; check {section}.tls: tls = "starttls" for port {port}?'
    if tls in ("starttls", "none") and port in IMPLICIT_TLS_PORTS:
        return f'; check {section}.tls: tls = "ssl" for port {port}?'
    return ""
