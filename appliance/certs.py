"""The box's own certificates, so that the page on the shop's LAN is HTTPS.

No public authority will certify ``smsgenie-xxxx.local`` or ``192.168.1.23``,
so the box is its own small authority: at its first start it makes a local
CA (kept in ``<data_dir>/tls``, readable by the service user only) and signs
with it the certificate the page is served with. A shop trusts the CA once -
checking its fingerprint against the counter panel's "Certificate" screen -
and every certificate the box makes later (a new LAN address, a renewal) is
trusted with it: the fingerprint a shop checked never changes.

A trusted CA could vouch for any site, so this one is name-constrained
(RFC 5280 4.2.1.10): it can only certify the box's own names and addresses on
private networks. Should its key ever leave the box, it still cannot stand in
for a bank or a mail server.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.clock import Clock
from appliance.errors import SmsGenieError
from appliance.files import write_atomic
from appliance.lan import lan_ip

#: Where the certificates live, under the data directory.
TLS_DIR = "tls"
#: The CA outlives the box; the page's certificate is renewed when it nears its end.
CA_DAYS = 20 * 365
#: Apple's devices refuse a server certificate valid for more than 825 days, even from a private CA.
SERVER_DAYS = 800
RENEW_DAYS = 30
#: The networks the CA may certify addresses in: loopback, the private and link-local ranges.
PRIVATE_NETWORKS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                    "::1/128", "fc00::/7", "fe80::/10")


log = logging.getLogger(__name__)


class CertificateError(SmsGenieError):
    """The box's certificates cannot be made or read (a full or read-only data directory, a damaged file)."""


@dataclass(frozen=True)
class Certificates:
    """The files a TLS server needs, and what a person checks."""

    ca: Path
    """The CA certificate (PEM): what a shop installs as trusted."""
    chain: Path
    """The page's certificate followed by the CA's (PEM)."""
    key: Path
    """The page's private key (PEM)."""
    fingerprint: str
    """SHA-256 of the CA certificate, upper-case hex: what the panel shows."""


def box_names(listen_host: str = "") -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses a browser may use for this box right now."""
    host = socket.gethostname().split(".")[0] or "smsgenie"
    names = [host, f"{host}.local", "localhost"]
    addresses = ["127.0.0.1", "::1"]
    if listen_host and listen_host not in ("0.0.0.0", "::"):
        try:
            addresses.append(str(ipaddress.ip_address(listen_host.strip("[]"))))
        except ValueError:
            names.append(listen_host)
    else:
        lan = lan_ip()
        if lan:
            addresses.append(lan)
    private = [ipaddress.ip_network(n) for n in PRIVATE_NETWORKS]
    addresses = [a for a in addresses if any(ipaddress.ip_address(a) in n for n in private)]  # the CA's reach
    return list(dict.fromkeys(names)), list(dict.fromkeys(addresses))


def fingerprint(data_dir: str | Path) -> str | None:
    """The CA's SHA-256 fingerprint, or None when the box has made no certificates (HTTPS off)."""
    try:
        pem = (Path(data_dir) / TLS_DIR / "ca.crt").read_bytes()
        return _fingerprint(x509.load_pem_x509_certificate(pem))
    except (OSError, ValueError):
        return None


def ensure(data_dir: str | Path, names: list[str], addresses: list[str], clock: Clock) -> Certificates:
    """Make the CA if there is none, and a page certificate if there is none, it does not cover
    ``names`` and ``addresses``, or it ends within :data:`RENEW_DAYS`. Returns the files to serve."""
    folder = Path(data_dir) / TLS_DIR
    now = datetime.datetime.fromtimestamp(clock.time(), datetime.timezone.utc)
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        ca_key, ca_cert = _load_or_make_ca(folder, names, now)
        if not _covers(folder, names, addresses, now, ca_cert):
            _make_server(folder, names, addresses, now, ca_key, ca_cert)
    except OSError as exc:
        raise CertificateError(f"the box cannot make its HTTPS certificate in {folder}: "
                               f"{exc.strerror or exc}. Free space or fix the data directory's "
                               f"permissions, or set [web] tls = \"off\"") from None
    except ValueError as exc:
        raise CertificateError(f"the box's HTTPS certificate files in {folder} are damaged ({exc}). "
                               f"Move the folder away and start again: the box makes a new CA, "
                               f"which every shop computer must then trust again") from None
    return Certificates(ca=folder / "ca.crt", chain=folder / "server.crt", key=folder / "server.key",
                        fingerprint=_fingerprint(ca_cert))


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_atomic(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()), mode=0o600)


def _load_or_make_ca(folder: Path, names: list[str],
                     now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The box's CA; a new one if there is none, or if the box's name changed (the old may not certify it)."""
    key_path, cert_path = folder / "ca.key", folder / "ca.crt"
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
        if set(names) <= {n.value for n in constraints.permitted_subtrees if isinstance(n, x509.DNSName)}:
            return key, cert
        log.warning("the box's name is now %s: it makes a new CA, which the shop's computers must trust again "
                    "(the panel's Certificate screen shows its fingerprint)", names[0])
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SMS Genie"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"SMS Genie {names[0]} local CA")])
    permitted = [x509.DNSName(n) for n in names]
    permitted += [x509.IPAddress(ipaddress.ip_network(n)) for n in PRIVATE_NETWORKS]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    for stale in ("server.crt", "server.key"):  # signed by a CA that is gone
        (folder / stale).unlink(missing_ok=True)
    return key, cert


def _covers(folder: Path, names: list[str], addresses: list[str], now: datetime.datetime,
            ca_cert: x509.Certificate) -> bool:
    try:
        chain = (folder / "server.crt").read_bytes()
        (folder / "server.key").stat()
    except FileNotFoundError:
        return False
    cert = x509.load_pem_x509_certificates(chain)[0]
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_DAYS):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have_names = set(san.get_values_for_type(x509.DNSName))
    have_addresses = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return set(names) <= have_names and {str(ipaddress.ip_address(a)) for a in addresses} <= have_addresses


def _make_server(folder: Path, names: list[str], addresses: list[str], now: datetime.datetime,
                 ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(folder / "server.key", key)
    pem = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    write_atomic(folder / "server.crt", pem, mode=0o644)
