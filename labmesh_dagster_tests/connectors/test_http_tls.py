"""The ELN connectors' HTTP clients share one TLS context per trust store, and each still checks what it must.

A TLS context reads every CA certificate when it is made (about 30 ms), and the
ELN sensor opens its connector each tick; the context is therefore made once per
process and trust store. Checked here against a real HTTPS server on localhost
whose certificate a private CA signed: the default trust store refuses it, a
client given that CA's file accepts it, and ``verify=False`` skips the check.
"""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labmesh_dagster.connectors.http import http_client, tls_context


def certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def private_ca_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server at ``https://localhost:<port>/`` and the file of the private CA that signed its certificate."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labmesh test CA")])
    ca = certificate("labmesh test CA", ca_key, ca_name, ca_key, ca=True)
    server = certificate("localhost", server_key, ca_name, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(
        server.public_bytes(serialization.Encoding.PEM)
        + server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{httpd.server_address[1]}/", folder / "ca.pem"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_clients_share_one_tls_context_per_trust_store() -> None:
    assert tls_context() is tls_context()
    assert tls_context() is not tls_context(str(Path(ssl.get_default_verify_paths().openssl_cafile)))


def test_the_default_trust_store_refuses_a_private_ca(private_ca_server: tuple[str, Path]) -> None:
    url, _ = private_ca_server
    with http_client() as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get(url)


def test_a_client_given_the_ca_file_trusts_it(private_ca_server: tuple[str, Path]) -> None:
    url, ca_file = private_ca_server
    with http_client(str(ca_file)) as first, http_client(str(ca_file)) as second:
        assert first.get(url).text == "ok"
        assert second.get(url).text == "ok"


def test_verify_false_skips_the_check(private_ca_server: tuple[str, Path]) -> None:
    url, _ = private_ca_server
    with http_client(False) as client:
        assert client.get(url).text == "ok"
