"""The CLI end to end against the sandbox: connect with a token, run, inspect."""

from __future__ import annotations

import json

from click.testing import CliRunner

from integration.cli import cli

from .conftest import make_rig


def _json(output: str) -> dict:
    return json.loads(output[output.index("{") :])


def test_connect_run_status_and_dry_runs(world, open_leads, tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("LEADLIFT_HOME", str(home))
    runner = CliRunner()
    with make_rig(world, tmp_path) as rig:
        config = rig.sandbox.config
        monkeypatch.setenv("LEADLIFT_SALESFORCE_CLIENT_ID", config.salesforce_client_id)
        monkeypatch.setenv("LEADLIFT_SALESFORCE_CLIENT_SECRET", config.salesforce_client_secret)
        token = rig.sandbox.issue_tokens("salesforce")
        base = rig.server.url
        connect = runner.invoke(
            cli,
            ["connect", "salesforce", "--instance-url", base, "--login-url", base,
             "--ca-file", rig.server.ca_file, "--access-token", token["access_token"],
             "--refresh-token", token["refresh_token"]],
        )  # fmt: skip
        assert connect.exit_code == 0, connect.output
        assert "Leadlift Sandbox Org" in connect.output

        ran = runner.invoke(cli, ["run", "--json"])
        assert ran.exit_code == 0, ran.output
        cycle = _json(ran.stdout)
        assert cycle["writeback"]["succeeded"] == open_leads < 3000

        rig.sandbox.expire_access_tokens("salesforce")  # the stored refresh token takes over
        dry = runner.invoke(cli, ["writeback", "--dry-run"])
        assert dry.exit_code == 0 and "0 records would be updated" in dry.output

        fields = runner.invoke(cli, ["fields", "install", "--dry-run"])
        assert fields.exit_code == 0, fields.output
        lines = [" ".join(line.split()) for line in fields.output.splitlines()]
        assert "kept Lead.Lead_Score__c" in lines
        assert "kept Lead.Uplift_Segment__c" in lines  # a scoring cycle installs what it writes
        assert "would create custom_field Contact.Experiment_Arm__c" in lines
        assert "would create field_permission Contact.Experiment_Arm__c" in lines

        status = _json(runner.invoke(cli, ["status", "--json"]).stdout)
        (connection,) = status["connections"]
        assert connection["name"] == "salesforce"
        assert connection["last_writeback"]["succeeded"] == open_leads
        assert connection["active_model"]["held_out_auc"] == cycle["trained"]["auc"]

        ready = _json(runner.invoke(cli, ["readiness", "--json"]).stdout)
        checks = {c["name"]: c for c in ready["checks"]}
        assert ready["mode"] == cycle["trained"]["mode"]
        assert checks["history_months"]["status"] == "pass"
        assert checks["positives"]["threshold"] == 200

        listed = json.loads(runner.invoke(cli, ["models", "list", "--json"]).stdout)
        assert {(m["kind"], m["status"]) for m in listed} == {
            ("propensity", "active"),
            ("uplift", "active"),
        }
        card = tmp_path / "card.html"
        shown = runner.invoke(cli, ["models", "show", "1", "--kind", "uplift", "--html", str(card)])
        assert shown.exit_code == 0 and "per_action" not in shown.output
        assert "qini_auc" in shown.output and 'alt="qini_curves"' in card.read_text()


def test_unknown_connection_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LEADLIFT_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["run", "--connection", "nope"])
    assert result.exit_code == 1
    assert "no connection named 'nope'" in result.output
