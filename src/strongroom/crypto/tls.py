"""TLS material for the HTTP port: a private CA and a server certificate, generated on first start.

Layout under `<config-dir>/certs/` (the CA file name is the one Elasticsearch 8 uses):
    http_ca.crt  the CA certificate clients trust (0644)
    http_ca.key  the CA key, kept to re-issue the server certificate (0600)
    http.crt     server certificate followed by the CA certificate (0644)
    http.key     server key (0600)
Operators may bring their own certificate chain and key instead; then nothing is generated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3 * 365
SERVER_DAYS = 397  # The longest validity browsers accept for a server certificate.
RENEW_BEFORE = dt.timedelta(days=30)


class TlsError(Exception):
    pass


@dataclass(frozen=True)
class TlsMaterial:
    cert_chain: Path  # server certificate (+ CA) in PEM
    key: Path
    ca_cert: Path | None  # None when the operator supplied their own chain
    fingerprint: str  # SHA-256 of the CA certificate (or of the leaf when there is no CA), hex
    generated: bool  # True when this start created or renewed something


def fingerprint_of(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _write_private(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Strongroom HTTP CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _subject_alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in ["localhost", "127.0.0.1", "::1", *hosts]:
        if not host or host in seen or host in ("0.0.0.0", "::"):
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _new_server(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: list[str]
                ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _covers(cert: x509.Certificate, hosts: list[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    wanted = {str(n.value) for n in _subject_alt_names(hosts)}
    return wanted <= present


def local_hosts(bind_host: str) -> list[str]:
    """Names a client may use for this server: the bind address, and the host name on wildcard binds."""
    if bind_host in ("0.0.0.0", "::"):
        return [socket.gethostname(), socket.getfqdn()]
    return [bind_host]


def ensure_http_certificates(config_dir: Path, hosts: list[str]) -> TlsMaterial:
    certs = config_dir / "certs"
    certs.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_crt, ca_key_path = certs / "http_ca.crt", certs / "http_ca.key"
    crt, key_path = certs / "http.crt", certs / "http.key"
    generated = False
    if ca_crt.exists() and ca_key_path.exists():
        try:
            ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
            ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise TlsError(f"cannot read the HTTP CA in {certs}: {exc}") from exc
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TlsError(f"the HTTP CA key in {certs} is not an EC key")
        if ca_cert.not_valid_after_utc - _now() < RENEW_BEFORE:
            raise TlsError(f"the HTTP CA certificate {ca_crt} expires on {ca_cert.not_valid_after_utc:%Y-%m-%d}; "
                           "replace it (delete the certs directory to generate a new CA, then re-trust it)")
    elif ca_crt.exists() or ca_key_path.exists():
        raise TlsError(f"{certs} holds only half of the HTTP CA (http_ca.crt and http_ca.key go together)")
    else:
        ca_key, ca_cert = _new_ca()
        _write_private(ca_key_path, _key_pem(ca_key), 0o600)
        _write_private(ca_crt, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        generated = True
    reissue = True
    if crt.exists() and key_path.exists():
        try:
            current = x509.load_pem_x509_certificate(crt.read_bytes())
            reissue = (current.issuer != ca_cert.subject or not _covers(current, hosts)
                       or current.not_valid_after_utc - _now() < RENEW_BEFORE)
        except ValueError:
            reissue = True
    if reissue:
        server_key, server_cert = _new_server(ca_key, ca_cert, hosts)
        _write_private(key_path, _key_pem(server_key), 0o600)
        chain = server_cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
        _write_private(crt, chain, 0o644)
        generated = True
    return TlsMaterial(crt, key_path, ca_crt, fingerprint_of(ca_cert), generated)


def operator_certificates(cert_path: Path, key_path: Path) -> TlsMaterial:
    """Uses a certificate chain and key supplied by the operator (checked, never modified)."""
    try:
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsError(f"cannot use the TLS certificate {cert_path} and key {key_path}: {exc}") from exc
    if key_path.stat().st_mode & 0o077:
        raise TlsError(f"the TLS key {key_path} is readable by other users; chmod 600 it")
    anchor = chain[-1]
    return TlsMaterial(cert_path, key_path, None, fingerprint_of(anchor), False)
