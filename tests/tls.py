"""TLS for the security tests: certificates made with the openssl command line, and a TLS proxy that
puts a (mutual) TLS listener in front of a plaintext broker (tansu does no TLS itself)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

KEY_PASSWORD = "client-key-pass-7c1e"
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-new", *_EC, "-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
        "-out", f"{name}.pem", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d,
    )  # fmt: skip


def _leaf(d: Path, name: str, ca: str, extensions: str) -> None:
    (d / f"{name}.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n" + extensions
    )
    _openssl("req", "-new", *_EC, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             cwd=d)  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d,
    )  # fmt: skip


@dataclass(frozen=True)
class Certs:
    """A CA; a server certificate for 127.0.0.1/localhost and one for another name, both signed by
    it; a client certificate with its key plain and encrypted (KEY_PASSWORD); a CA nobody uses."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca(self) -> Path:
        return self.path("test-ca.pem")

    @property
    def other_ca(self) -> Path:
        return self.path("other-ca.pem")

    @property
    def client_cert(self) -> Path:
        return self.path("client.pem")

    @property
    def client_key(self) -> Path:
        return self.path("client.key")

    @property
    def client_key_encrypted(self) -> Path:
        return self.path("client-encrypted.key")

    def server_context(self, name: str = "server", require_client_cert: bool = True) -> ssl.SSLContext:
        """A server-side context with certificate ``name`` (server, or wrong-name), requiring a
        client certificate signed by the CA when asked."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        context.load_cert_chain(str(self.path(f"{name}.pem")), str(self.path(f"{name}.key")))
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
        return context


def make_certs(directory: Path) -> Certs:
    """Make every certificate of :class:`Certs` in ``directory`` (about a second)."""
    d = directory
    _ca(d, "test-ca")
    _ca(d, "other-ca")
    _leaf(d, "server", "test-ca", "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _leaf(d, "wrong-name", "test-ca", "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:kafka.example.org\n")
    _leaf(d, "client", "test-ca", "extendedKeyUsage=clientAuth\n")
    _openssl(
        "pkey", "-in", "client.key", "-aes256", "-passout", f"pass:{KEY_PASSWORD}",
        "-out", "client-encrypted.key", cwd=d,
    )  # fmt: skip
    return Certs(d)


class TlsProxy:
    """Accepts TLS on ``127.0.0.1:port`` with ``context`` and forwards each connection's bytes to the
    plaintext ``upstream`` (host, port), in a thread of its own. ``handshakes`` counts completed
    TLS handshakes."""

    def __init__(self, port: int, upstream: tuple[str, int], context: ssl.SSLContext) -> None:
        self.port, self.upstream, self.context = port, upstream, context
        self.handshakes = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TlsProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.context), self._loop
        ).result(timeout=10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._server.wait_closed(), 2)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
                writer.close()
