"""TLS and mutual TLS for the gRPC and HTTP listeners, with certificates reloaded without restart.

Both listeners watch the certificate, key and client-CA files: a handshake after a file changed uses
the new files (cert-manager style rotation), connections already open keep theirs.
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of a listener; ``client_ca`` set means clients must present a certificate it signed."""

    cert: str
    key: str
    client_ca: str = ""

    def problems(self, name: str) -> list[str]:
        out = []
        for label, path in (("cert", self.cert), ("key", self.key), ("client CA", self.client_ca)):
            if path and not Path(path).is_file():
                out.append(f"{name}: {label} file {path!r} does not exist")
        if bool(self.cert) != bool(self.key):
            out.append(f"{name}: a certificate needs its key, and a key its certificate")
        if self.client_ca and not self.cert:
            out.append(f"{name}: client certificate authentication needs a server certificate")
        return out

    def stamp(self) -> tuple[float, ...]:
        return tuple(os.stat(p).st_mtime_ns for p in (self.cert, self.key, self.client_ca) if p)


def grpc_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that re-read the files when they change (checked at each new handshake)."""

    def configuration() -> grpc.ServerCertificateConfiguration:
        pair = (Path(files.key).read_bytes(), Path(files.cert).read_bytes())
        roots = Path(files.client_ca).read_bytes() if files.client_ca else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=roots)

    state = {"stamp": files.stamp()}
    lock = threading.Lock()

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        with lock:
            try:
                stamp = files.stamp()
                if stamp == state["stamp"]:
                    return None
                config = configuration()
            except OSError:
                return None  # mid-rotation (a file missing): keep serving the old certificate
            state["stamp"] = stamp
            return config

    # types-grpcio types the fetcher as never returning None; grpc documents None as "no change"
    return grpc.dynamic_ssl_server_credentials(configuration(), fetch,  # type: ignore[arg-type]
                                               require_client_authentication=bool(files.client_ca))


class ReloadingSslContext:
    """An ``ssl.SSLContext`` for the HTTP listener, rebuilt when the files change."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._stamp = files.stamp()
        self.context = self._build()

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._files.cert, self._files.key)
        if self._files.client_ca:
            context.load_verify_locations(self._files.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def server_context(self) -> ssl.SSLContext:
        """A context for a listener that takes one context for good (asyncio): each handshake switches
        to :meth:`current` from the ClientHello callback, so rotated files apply to new connections."""
        listener = self._build()

        def switch(connection: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext) -> None:
            context = self.current()
            if connection.context is not context:
                connection.context = context

        listener.sni_callback = switch
        return listener

    def current(self) -> ssl.SSLContext:
        """The context to use for the next connection."""
        try:
            stamp = self._files.stamp()
        except OSError:
            return self.context
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self.context = self._build()
                        self._stamp = stamp
                    except (OSError, ssl.SSLError):
                        pass  # half-written files: keep the old context, try again next connection
        return self.context
