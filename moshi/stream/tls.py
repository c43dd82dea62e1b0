"""TLS for the server: a certificate directory (`cert.pem`, `key.pem`, as Kyutai's
`--ssl`), or a self-signed certificate made at start-up, so that a browser on another
machine gets the secure context it needs for the microphone.

The certificate is made with the `cryptography` package (a wheel on every platform pip
supports), not the `openssl` command, which Windows and slim containers lack.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import ssl
import tempfile
from pathlib import Path

CERT_FILE, KEY_FILE = "cert.pem", "key.pem"
SELF_SIGNED_DAYS = 30


def context_from_dir(directory: str | Path) -> ssl.SSLContext:
    """A server context from `directory`/cert.pem and key.pem. Raises `ValueError`."""
    d = Path(directory)
    cert, key = d / CERT_FILE, d / KEY_FILE
    for path in (cert, key):
        if not path.is_file():
            raise ValueError(f"--ssl {d}: no {path.name} there (expected {CERT_FILE} and {KEY_FILE})")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise ValueError(f"--ssl {d}: cannot load {CERT_FILE}/{KEY_FILE}: {e}") from None
    return context


def context_from_pem(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context from PEM bytes (written to a private temporary folder to load)."""
    with tempfile.TemporaryDirectory(prefix="moshi-tls-") as tmp:
        for name, data in ((CERT_FILE, cert_pem), (KEY_FILE, key_pem)):
            (Path(tmp) / name).write_bytes(data)
        return context_from_dir(tmp)


def self_signed(hosts: list[str]) -> tuple[bytes, bytes]:
    """A self-signed certificate for `hosts` (names or IP addresses, plus localhost and this
    machine's name) -> (cert PEM, key PEM). The key is ECDSA P-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1", "::1", socket.gethostname()]):
        if host in ("", "0.0.0.0", "::"):
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moshi self-signed")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 fingerprint of a PEM certificate, as browsers show it (AB:CD:...)."""
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem.decode())).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
