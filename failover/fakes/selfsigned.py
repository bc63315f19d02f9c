"""A fresh self-signed certificate for the local fakes (portal simulator, fake Google Ads API)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SelfSigned:
    key_pem: bytes
    cert_pem: bytes
    not_after: float  # unix time


def self_signed(common_name: str, hosts: tuple[str, ...] = ("127.0.0.1", "::1"), valid_days: int = 30) -> SelfSigned:
    """An EC certificate (fast to make, unlike RSA) for localhost and ``hosts``, valid ``valid_days``.

    It carries a CA flag and server key usages, so strict verifiers (gRPC, Python's ssl) accept it
    as its own trust anchor.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    not_after = float(now + valid_days * 86400)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for address in dict.fromkeys(hosts):
        with contextlib.suppress(ValueError):
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.fromtimestamp(now - 86400, dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(not_after, dt.UTC))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SelfSigned(key_pem, cert.public_bytes(serialization.Encoding.PEM), not_after)
