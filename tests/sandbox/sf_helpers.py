"""Helpers for the Salesforce sandbox tests: FLS grants, CSV parsing, JWT keys."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from simple_salesforce import Salesforce


def grant_fields(
    sf: Salesforce,
    user_id: str,
    fields: list[str],
    *,
    name: str,
    edit: bool = True,
) -> str:
    """Create permission set ``name`` granting ``fields`` (``Lead.X__c``) to ``user_id``.

    Returns the permission set id (delete it to revoke everything it granted).
    """
    ps = sf.PermissionSet.create({"Name": name, "Label": name.replace("_", " ")})
    for full_name in fields:
        sf.FieldPermissions.create(
            {
                "ParentId": ps["id"],
                "SobjectType": full_name.split(".", 1)[0],
                "Field": full_name,
                "PermissionsRead": True,
                "PermissionsEdit": edit,
            }
        )
    sf.PermissionSetAssignment.create({"AssigneeId": user_id, "PermissionSetId": ps["id"]})
    return ps["id"]


def parse_csv(text: str) -> list[dict[str, str]]:
    """Parse a Bulk API CSV page into dicts (all values strings, null = "")."""
    return list(csv.DictReader(io.StringIO(text, newline="")))


def rsa_keypair() -> tuple[str, str]:
    """Return (private key PEM, self-signed certificate PEM) for the JWT bearer flow."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leadlift-jwt")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


def jwt_assertion(private_pem: str, **claims: Any) -> str:
    """Sign a JWT bearer assertion (RS256) the way simple-salesforce builds one."""
    import jwt

    return jwt.encode(claims, private_pem, algorithm="RS256")
