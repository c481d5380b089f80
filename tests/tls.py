"""A throwaway certificate authority for the SASL_SSL tests, made with openssl and keytool.

One CA signs the broker's certificate (for 127.0.0.1 and localhost) and a client certificate;
the broker gets a PKCS12 keystore (its key and chain) and a PKCS12 truststore (the CA, made
with keytool, for the client certificates it requires); the clients get PEM files. A second,
unrelated CA stands for "a CA the broker's certificate does not come from".
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    """The files one test module's broker and clients use."""

    ca: Path
    other_ca: Path
    keystore: Path
    truststore: Path
    store_password: str
    client_cert: Path
    client_key: Path


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} {argv[1]} failed: {done.stderr[-1500:]}")


def _key(path: Path) -> None:
    _run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(path))  # fmt: skip


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _key(key)
    _run("openssl", "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return key, cert


def _signed(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> Path:
    """A key and a certificate for `name` signed by `ca`; returns the certificate."""
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
    ext_file = directory / f"{name}.ext"
    ext_file.write_text(extensions)
    _key(key)
    _run("openssl", "req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext_file))  # fmt: skip
    return cert


def make_pki(directory: Path) -> Pki:
    """A CA, the broker's keystore and truststore, a client certificate, and a foreign CA."""
    password = secrets.token_hex(12)
    ca = _ca(directory, "radio-test-ca")
    _, other_ca = _ca(directory, "some-other-ca")
    broker = _signed(
        directory,
        "broker",
        ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    client = _signed(directory, "client", ca, "extendedKeyUsage=clientAuth\n")
    keystore, truststore = directory / "broker.p12", directory / "trust.p12"
    _run("openssl", "pkcs12", "-export", "-in", str(broker), "-inkey",
         str(directory / "broker.key"), "-certfile", str(ca[1]), "-name", "broker",
         "-out", str(keystore), "-passout", f"pass:{password}")  # fmt: skip
    _run("keytool", "-importcert", "-noprompt", "-alias", "radio-test-ca", "-file", str(ca[1]),
         "-keystore", str(truststore), "-storetype", "PKCS12", "-storepass", password)  # fmt: skip
    return Pki(
        ca=ca[1],
        other_ca=other_ca,
        keystore=keystore,
        truststore=truststore,
        store_password=password,
        client_cert=client,
        client_key=directory / "client.key",
    )
