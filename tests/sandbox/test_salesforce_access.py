"""Setup records, field-level security, owner rules, the JWT bearer grant and the Metadata
API, all through simple-salesforce (and zeep for ``sf.mdapi``) over real HTTPS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import zeep.exceptions
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer

from .conftest import sf_client
from .fake_seed import make_seed
from .sf_helpers import grant_fields, jwt_assertion, parse_csv, rsa_keypair

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return rsa_keypair()


@pytest.fixture(scope="module")
def access_sandbox(keys: tuple[str, str]) -> SandboxCRM:
    config = SandboxConfig(salesforce_jwt_public_key_pem=keys[1])
    return SandboxCRM.from_seed(make_seed(200), config)


@pytest.fixture(scope="module")
def access_server(access_sandbox: SandboxCRM) -> Iterator[SandboxServer]:
    with SandboxServer(access_sandbox) as srv:
        yield srv


@pytest.fixture
def asf(access_server: SandboxServer, access_sandbox: SandboxCRM) -> Salesforce:
    return sf_client(access_server, access_sandbox.issue_tokens("salesforce")["access_token"])


def username(sandbox: SandboxCRM, user_id: str) -> str:
    return sandbox.salesforce.get("User", user_id)["Username"]


def jwt_token(server: SandboxServer, assertion: str):
    return server.session().post(
        server.url + "/services/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": assertion},
    )


def sf_as(server: SandboxServer, private_pem: str, user: str) -> Salesforce:
    """A client whose token acts as ``user`` (through the JWT bearer grant)."""
    exp = f"{time.time() + 170:.0f}"
    assertion = jwt_assertion(
        private_pem, iss="sandbox-sf-client", sub=user, aud=server.url, exp=exp
    )
    response = jwt_token(server, assertion)
    assert response.status_code == 200, response.text
    return sf_client(server, response.json()["access_token"])


def mdapi(sf: Salesforce, server: SandboxServer):
    """``sf.mdapi`` with zeep's own requests session trusting the sandbox certificate."""
    api = sf.mdapi
    api._client.transport.session.trust_env = False
    api._client.transport.session.verify = server.ca_file
    return api


def create_field(sf: Salesforce, full_name: str, **metadata) -> str:
    meta = {"label": full_name.split(".")[1].removesuffix("__c"), "type": "Number"}
    meta.update(precision=5, scale=1)
    meta.update(metadata)
    created = sf.toolingexecute(
        "sobjects/CustomField", method="POST", data={"FullName": full_name, "Metadata": meta}
    )
    return created["id"]


def test_seed_queues_accept_leads(asf: Salesforce, access_sandbox: SandboxCRM) -> None:
    queues = asf.query("SELECT Id FROM Group WHERE Type = 'Queue'")["records"]
    accepted = asf.query("SELECT QueueId, SobjectType FROM QueueSobject")["records"]
    assert {r["QueueId"] for r in accepted if r["SobjectType"] == "Lead"} == {
        q["Id"] for q in queues
    }
    assert len(queues) == len(access_sandbox.salesforce.frame("Group"))


def test_permission_set_records(asf: Salesforce, access_sandbox: SandboxCRM) -> None:
    org = access_sandbox.salesforce
    create_field(asf, "Lead.Perm_Score__c")
    create_field(asf, "Lead.Perm_Formula__c", type="Number", formula="Perm_Score__c * 2")
    ps = asf.PermissionSet.create({"Name": "Leadlift_Perms", "Label": "Leadlift Perms"})
    assert ps["success"] and ps["id"].startswith("0PS") and ps["errors"] == []
    with pytest.raises(SalesforceMalformedRequest) as err:
        asf.PermissionSet.create({"Name": "Leadlift_Perms", "Label": "Again"})
    assert err.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    with pytest.raises(SalesforceMalformedRequest) as err:
        asf.PermissionSet.create({"Name": "No_Label"})
    assert err.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    found = asf.query("SELECT Id, Name, Label FROM PermissionSet WHERE Name = 'Leadlift_Perms'")
    assert [r["Id"] for r in found["records"]] == [ps["id"]]

    def perm(field: str, read: bool, edit: bool) -> dict:
        return {
            "ParentId": ps["id"],
            "SobjectType": "Lead",
            "Field": field,
            "PermissionsRead": read,
            "PermissionsEdit": edit,
        }

    fp = asf.FieldPermissions.create(perm("Lead.Perm_Score__c", True, True))
    assert fp["id"].startswith("01k")
    for bad, code in [
        (perm("Lead.Perm_Score__c", False, False), "FIELD_INTEGRITY_EXCEPTION"),
        (perm("Lead.Nope__c", True, False), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        (perm("Lead.Perm_Formula__c", True, True), "FIELD_INTEGRITY_EXCEPTION"),
        (perm("Lead.Perm_Score__c", True, False), "DUPLICATE_VALUE"),
        ({**perm("Lead.Perm_Score__c", True, False), "ParentId": "0PS8d0000000999AAA"}, None),
    ]:
        with pytest.raises(SalesforceMalformedRequest) as err:
            asf.FieldPermissions.create(bad)
        assert code is None or err.value.content[0]["errorCode"] == code
    asf.FieldPermissions.create(perm("Lead.Perm_Formula__c", True, False))
    rows = asf.query(f"SELECT Id, Field FROM FieldPermissions WHERE ParentId = '{ps['id']}'")
    assert sorted(r["Field"] for r in rows["records"]) == [
        "Lead.Perm_Formula__c",
        "Lead.Perm_Score__c",
    ]
    user = org.integration_user_id
    psa = asf.PermissionSetAssignment.create({"AssigneeId": user, "PermissionSetId": ps["id"]})
    assert psa["id"].startswith("0Pa")
    with pytest.raises(SalesforceMalformedRequest) as err:
        asf.PermissionSetAssignment.create({"AssigneeId": user, "PermissionSetId": ps["id"]})
    assert err.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    inactive = org.id_for("User", 2)
    org.update("User", inactive, {"IsActive": False})
    try:
        with pytest.raises(SalesforceMalformedRequest) as err:
            asf.PermissionSetAssignment.create(
                {"AssigneeId": inactive, "PermissionSetId": ps["id"]}
            )
        assert err.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    finally:
        org.update("User", inactive, {"IsActive": True})
    names = {s["name"] for s in asf.describe()["sobjects"]}
    assert {"PermissionSet", "FieldPermissions", "PermissionSetAssignment"} <= names
    assert asf.PermissionSet.describe()["createable"]
    assert asf.PermissionSet.delete(ps["id"]) == 204
    assert (
        asf.query(f"SELECT Id FROM FieldPermissions WHERE ParentId = '{ps['id']}'")["totalSize"]
        == 0
    )
    assert (
        asf.query(f"SELECT Id FROM PermissionSetAssignment WHERE PermissionSetId = '{ps['id']}'")[
            "totalSize"
        ]
        == 0
    )
    with pytest.raises(SalesforceResourceNotFound):
        asf.PermissionSet.delete(ps["id"])


def test_field_level_security(
    asf: Salesforce,
    access_sandbox: SandboxCRM,
    access_server: SandboxServer,
    keys: tuple[str, str],
) -> None:
    org = access_sandbox.salesforce
    lead = org.id_for("Lead", 5 + 3 * 7)
    field_id = create_field(asf, "Lead.Fls_Score__c")
    create_field(asf, "Contact.Fls_Score__c")

    def visible() -> bool:
        return "Fls_Score__c" in {f["name"] for f in asf.Lead.describe()["fields"]}

    # Invisible everywhere but the Tooling API.
    assert not visible()
    assert "Account__c" in {f["name"] for f in asf.Lead.describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest) as err:
        asf.query("SELECT Id, Fls_Score__c FROM Lead")
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Fls_Score__c' on entity 'Lead'" in err.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as err:
        next(asf.bulk2.Lead.query("SELECT Id, Fls_Score__c FROM Lead", wait=0))
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as err:
        asf.Lead.update(lead, {"Fls_Score__c": 10})
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    tooling = asf.toolingexecute(
        "query/?q=SELECT+Id+FROM+CustomField+WHERE+DeveloperName+=+'Fls_Score'"
    )
    assert tooling["totalSize"] == 2
    record = {"attributes": {"type": "Lead"}, "id": lead, "Fls_Score__c": 1}
    result = asf.restful("composite/sobjects", method="PATCH", json={"records": [record]})
    assert result[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"

    # Read-only: readable, but every write path refuses it.
    read_only = grant_fields(
        asf, org.integration_user_id, ["Lead.Fls_Score__c"], name="Fls_Read", edit=False
    )
    assert visible()
    field = next(f for f in asf.Lead.describe()["fields"] if f["name"] == "Fls_Score__c")
    assert not field["updateable"] and not field["createable"]
    assert (
        asf.query(f"SELECT Fls_Score__c FROM Lead WHERE Id = '{lead}'")["records"][0][
            "Fls_Score__c"
        ]
        is None
    )
    with pytest.raises(SalesforceMalformedRequest) as err:
        asf.Lead.update(lead, {"Fls_Score__c": 10})
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    job = asf.bulk2.Lead.update(records=[{"Id": lead, "Fls_Score__c": "3"}], wait=0)
    failed = parse_csv(asf.bulk2.Lead.get_failed_records(job[0]["job_id"]))
    assert failed[0]["sf__Error"].startswith("INVALID_FIELD_FOR_INSERT_UPDATE:")

    # Read/write, for this user only.
    grant_fields(asf, org.integration_user_id, ["Lead.Fls_Score__c"], name="Fls_Edit")
    assert asf.Lead.update(lead, {"Fls_Score__c": 42.5}) == 204
    job = asf.bulk2.Lead.update(records=[{"Id": lead, "Fls_Score__c": "43.5"}], wait=0)
    assert job[0]["numberRecordsFailed"] == 0
    rows = parse_csv(
        next(asf.bulk2.Lead.query(f"SELECT Id, Fls_Score__c FROM Lead WHERE Id = '{lead}'", wait=0))
    )
    assert rows == [{"Id": lead, "Fls_Score__c": "43.5"}]
    rep = sf_as(access_server, keys[0], username(access_sandbox, org.id_for("User", 1)))
    assert "Fls_Score__c" not in {f["name"] for f in rep.Lead.describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest):
        rep.query("SELECT Fls_Score__c FROM Lead LIMIT 1")
    # Contact got its own field; its grant is separate.
    with pytest.raises(SalesforceMalformedRequest):
        asf.query("SELECT Fls_Score__c FROM Contact LIMIT 1")

    # Dropping the read-only set keeps the edit grant; deleting the field removes its grants.
    asf.PermissionSet.delete(read_only)
    assert visible()
    asf.toolingexecute(f"sobjects/CustomField/{field_id}", method="DELETE")
    assert not visible()
    assert (
        asf.query("SELECT Id FROM FieldPermissions WHERE Field = 'Lead.Fls_Score__c'")["totalSize"]
        == 0
    )


def test_fls_switch_off() -> None:
    config = SandboxConfig(enforce_field_level_security=False)
    sandbox = SandboxCRM.from_seed(make_seed(20), config)
    with SandboxServer(sandbox) as server:
        sf = sf_client(server, sandbox.issue_tokens("salesforce")["access_token"])
        create_field(sf, "Lead.Open_Score__c")
        assert sf.query("SELECT Open_Score__c FROM Lead")["totalSize"] == 20


def test_owner_rules(asf: Salesforce, access_sandbox: SandboxCRM) -> None:
    org = access_sandbox.salesforce
    leads = [org.id_for("Lead", 5 + 3 * k) for k in range(40, 46)]
    lead_queue = org.id_for("Group", 1)
    case_queue = org.add_queue("Case Queue", "Case_Queue", sobject_types=("Case",))
    inactive = org.id_for("User", 3)
    org.update("User", inactive, {"IsActive": False})
    try:
        assert asf.Lead.update(leads[0], {"OwnerId": org.id_for("User", 0)}) == 204
        assert asf.Lead.update(leads[1], {"OwnerId": lead_queue}) == 204
        assert org.get("Lead", leads[1])["OwnerId"] == lead_queue
        with pytest.raises(SalesforceMalformedRequest) as err:
            asf.Lead.update(leads[2], {"OwnerId": case_queue})
        assert err.value.content[0] == {
            "message": "queue not associated with this SObject type",
            "errorCode": "INVALID_CROSS_REFERENCE_KEY",
            "fields": ["OwnerId"],
        }
        with pytest.raises(SalesforceMalformedRequest) as err:
            asf.Lead.update(leads[3], {"OwnerId": inactive})
        assert err.value.content[0]["errorCode"] == "INACTIVE_OWNER_OR_USER"
        records = [
            {"attributes": {"type": "Lead"}, "id": leads[4], "OwnerId": case_queue},
            {"attributes": {"type": "Lead"}, "id": leads[5], "OwnerId": lead_queue},
        ]
        results = asf.restful("composite/sobjects", method="PATCH", json={"records": records})
        assert [r["success"] for r in results] == [False, True]
        contact = org.frame("Contact")["Id"].iloc[0]
        with pytest.raises(SalesforceMalformedRequest) as err:
            asf.Contact.update(contact, {"OwnerId": lead_queue})
        assert err.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    finally:
        org.update("User", inactive, {"IsActive": True})


def test_jwt_bearer_grant(
    access_server: SandboxServer, access_sandbox: SandboxCRM, keys: tuple[str, str]
) -> None:
    private, _ = keys
    org = access_sandbox.salesforce
    rep_id = org.id_for("User", 1)
    claims = {
        "iss": "sandbox-sf-client",
        "sub": username(access_sandbox, rep_id),
        "aud": access_server.url,
        "exp": f"{time.time() + 170:.0f}",  # simple-salesforce sends exp as a string
    }
    ok = jwt_token(access_server, jwt_assertion(private, **claims))
    assert ok.status_code == 200
    token = ok.json()
    assert "refresh_token" not in token and token["token_type"] == "Bearer"
    assert token["id"].endswith(f"/{rep_id}") and token["instance_url"] == access_server.url
    sf = sf_client(access_server, token["access_token"])
    assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1
    identity = access_server.session().get(
        token["id"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert identity.json()["user_id"] == rep_id
    login_aud = {**claims, "aud": "https://login.salesforce.com"}
    assert jwt_token(access_server, jwt_assertion(private, **login_aud)).status_code == 200

    other_key, _ = rsa_keypair()
    inactive = org.id_for("User", 4)
    cases = [
        (jwt_assertion(other_key, **claims), "invalid_grant", "invalid assertion"),
        (
            jwt_assertion(private, **{**claims, "aud": "https://evil.example"}),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            jwt_assertion(private, **{**claims, "exp": int(time.time()) - 5}),
            "invalid_grant",
            "expired authorization code",
        ),
        (
            jwt_assertion(private, **{**claims, "exp": int(time.time()) + 3600}),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            jwt_assertion(private, **{**claims, "iss": "someone-else"}),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            jwt_assertion(private, **{**claims, "sub": "nobody@example.com"}),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            jwt_assertion(private, **{**claims, "sub": username(access_sandbox, inactive)}),
            "invalid_grant",
            "inactive user",
        ),
        ("not-a-jwt", "invalid_grant", "invalid assertion"),
    ]
    org.update("User", inactive, {"IsActive": False})
    try:
        for assertion, error, description in cases:
            response = jwt_token(access_server, assertion)
            assert response.status_code == 400
            assert response.json() == {"error": error, "error_description": description}
    finally:
        org.update("User", inactive, {"IsActive": True})


def test_metadata_layout_round_trip(
    asf: Salesforce, access_server: SandboxServer, access_sandbox: SandboxCRM
) -> None:
    md = mdapi(asf, access_server)
    org = access_sandbox.salesforce
    layout = md.Layout.read(["Lead-Lead Layout"])
    assert layout.fullName == "Lead-Lead Layout"
    sections = [s.label for s in layout.layoutSections]
    assert sections == list(org.layout("Lead-Lead Layout"))
    first = layout.layoutSections[0].layoutColumns[0].layoutItems
    assert (first[1].field, first[1].behavior) == ("Name", "Readonly")
    assert "Company" in org.layout("Lead-Lead Layout")["Lead Information"]
    contact = md.Layout.read(["Contact-Contact Layout"])
    assert contact.layoutSections[0].label == "Contact Information"

    create_field(asf, "Lead.Layout_Score__c")
    column = layout.layoutSections[1].layoutColumns[0].layoutItems
    column.append(md.LayoutItem(field="Layout_Score__c", behavior="Readonly"))
    md.Layout.update([layout])
    assert org.layout("Lead-Lead Layout")["Additional Information"] == [
        "HasOptedOutOfEmail",
        "EmailBouncedReason",
        "Layout_Score__c",
        "EmailBouncedDate",
    ]
    again = md.Layout.read(["Lead-Lead Layout"])
    assert again.layoutSections[1].layoutColumns[0].layoutItems[-1].field == "Layout_Score__c"

    column.append(md.LayoutItem(field="Not_There__c", behavior="Edit"))
    with pytest.raises(Exception, match="FIELD_INTEGRITY_EXCEPTION"):
        md.Layout.update([layout])
    assert "Not_There__c" not in org.layout("Lead-Lead Layout")["Additional Information"]
    missing = md.Layout.read(["Lead-No Such Layout"])
    assert missing.fullName is None
    stats = access_sandbox.stats()["salesforce"]["by_endpoint"]
    assert stats["POST /services/Soap/m/<version> readMetadata"] >= 3
    assert stats["POST /services/Soap/m/<version> updateMetadata"] == 2


def test_metadata_list_views(
    asf: Salesforce, access_server: SandboxServer, access_sandbox: SandboxCRM
) -> None:
    md = mdapi(asf, access_server)
    org = access_sandbox.salesforce
    create_field(asf, "Lead.View_Score__c")

    def view(*columns: str):
        return md.ListView(
            fullName="Lead.Leadlift_Top_Leads",
            label="Leadlift Top Leads",
            filterScope="Everything",
            columns=list(columns),
            filters=[
                md.ListViewFilter(field="LEAD.STATUS", operation="equals", value="Working"),
                md.ListViewFilter(field="LEAD.COMPANY", operation="contains", value="Co"),
            ],
            booleanFilter="1 AND 2",
        )

    with pytest.raises(Exception, match="Could not resolve list view column: View_Score__c"):
        md.ListView.create([view("FULL_NAME", "View_Score__c")])  # not visible yet
    grant_fields(asf, org.integration_user_id, ["Lead.View_Score__c"], name="View_Access")
    md.ListView.create([view("FULL_NAME", "LEAD.COMPANY", "View_Score__c")])
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        md.ListView.create([view("FULL_NAME")])
    read = md.ListView.read(["Lead.Leadlift_Top_Leads"])
    assert read.label == "Leadlift Top Leads" and read.filterScope == "Everything"
    assert read.columns == ["FULL_NAME", "LEAD.COMPANY", "View_Score__c"]
    assert [(f.field, f.operation, f.value) for f in read.filters] == [
        ("LEAD.STATUS", "equals", "Working"),
        ("LEAD.COMPANY", "contains", "Co"),
    ]
    assert read.booleanFilter == "1 AND 2"
    stored = org.list_views()["Lead.Leadlift_Top_Leads"]
    assert stored["columns"] == ["FULL_NAME", "LEAD.COMPANY", "View_Score__c"]
    both = md.ListView.read(["Lead.Leadlift_Top_Leads", "Lead.AllOpenLeads"])
    assert [v.fullName for v in both] == ["Lead.Leadlift_Top_Leads", "Lead.AllOpenLeads"]
    md.ListView.delete(["Lead.Leadlift_Top_Leads"])
    assert "Lead.Leadlift_Top_Leads" not in org.list_views()
    with pytest.raises(Exception, match="INVALID_CROSS_REFERENCE_KEY"):
        md.ListView.delete(["Lead.Leadlift_Top_Leads"])


def test_metadata_bad_session_is_a_soap_fault(
    access_server: SandboxServer, access_sandbox: SandboxCRM
) -> None:
    token = access_sandbox.issue_tokens("salesforce")["access_token"]
    md = mdapi(sf_client(access_server, token), access_server)
    assert md.ListView.read(["Lead.AllOpenLeads"]).label == "All Open Leads"
    access_sandbox.tokens.revoke(token)
    with pytest.raises(zeep.exceptions.Fault) as err:
        md.ListView.read(["Lead.AllOpenLeads"])
    assert err.value.code == "sf:INVALID_SESSION_ID"
    assert err.value.message.startswith("INVALID_SESSION_ID")


def test_faults_target_the_metadata_api(
    asf: Salesforce, access_server: SandboxServer, access_sandbox: SandboxCRM
) -> None:
    md = mdapi(asf, access_server)
    access_sandbox.faults.inject("salesforce", 500, count=1, path_contains="/services/Soap/m/")
    with pytest.raises(zeep.exceptions.Fault) as err:
        md.Layout.read(["Lead-Lead Layout"])
    assert err.value.code == "sf:UNKNOWN_EXCEPTION"
    assert md.Layout.read(["Lead-Lead Layout"]).fullName == "Lead-Lead Layout"
