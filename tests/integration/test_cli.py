"""The CLI end to end against the sandbox: connect with a token, run, inspect."""

from __future__ import annotations

import json

from click.testing import CliRunner

from integration.cli import cli

from .conftest import make_rig


def labelled_lead(home) -> tuple[str, str]:
    """(lead, arm label) of a lead whose Experiment_Arm leadlift pushed, from the CLI's store."""
    from sqlalchemy import select

    from integration.config import load_settings
    from integration.store import Store
    from integration.store.models import Writeback

    store = Store(load_settings(home=home).store_url)
    with store.session() as session:
        pushed = session.execute(select(Writeback.crm_id, Writeback.field_values)).all()
    store.dispose()
    return next((crm_id, v["Experiment_Arm"]) for crm_id, v in pushed if "Experiment_Arm" in v)


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

        created = runner.invoke(
            cli,
            ["experiments", "create", "--key", "q4_calls", "--start", "--action",
             "call_first=call within 1 business day, 3 attempts v2", "--stratum", "tier"],
        )  # fmt: skip
        assert created.exit_code == 0 and "q4_calls: running" in created.output, created.output

        ran = runner.invoke(cli, ["run", "--json"])
        assert ran.exit_code == 0, ran.output
        cycle = _json(ran.stdout)
        units = cycle["experiments"]["q4_calls"]["units"]
        assert set(units) == {"call_first", "control"} and units["control"] > 0
        assert cycle["writeback"]["succeeded"] == open_leads < 3000

        rig.sandbox.expire_access_tokens("salesforce")  # the stored refresh token takes over
        dry = runner.invoke(cli, ["writeback", "--dry-run"])
        assert dry.exit_code == 0 and "0 records would be updated" in dry.output
        plan = json.loads(runner.invoke(cli, ["writeback", "--dry-run", "--json"]).stdout)
        assert (plan["leads_changed"], plan["field_updates"], plan["owner_updates"],
                plan["api_calls"]) == (0, 0, 0, 0)  # fmt: skip
        lead, label = labelled_lead(home)
        assert label.startswith("q4_calls/")
        assert rig.sandbox.salesforce.get("Lead", lead)["Experiment_Arm__c"] == label

        shown = _json(runner.invoke(cli, ["experiments", "show", "q4_calls", "--json"]).stdout)
        assert shown["experiment"]["actions"] == {
            "call_first": "call within 1 business day, 3 attempts v2"
        }
        past = _json(runner.invoke(cli, ["experiments", "show", "--past", "--json"]).stdout)
        assert {e["experiment"] for e in past["readout"]["experiments"]} >= {"call_first_v1"}
        assert runner.invoke(cli, ["experiments", "pause", "q4_calls"]).output.strip() == (
            "q4_calls: paused"
        )
        stopped = runner.invoke(cli, ["experiments", "stop", "q4_calls"])
        assert stopped.output.strip() == "q4_calls: stopped"
        again = runner.invoke(cli, ["experiments", "resume", "q4_calls"])
        assert again.exit_code != 0 and "stopped" in again.output  # stopped is final

        fields = runner.invoke(cli, ["fields", "install", "--dry-run"])
        assert fields.exit_code == 0, fields.output
        lines = [" ".join(line.split()) for line in fields.output.splitlines()]
        assert "kept Lead.Lead_Score__c" in lines
        assert "kept Lead.Uplift_Segment__c" in lines  # a scoring cycle installs what it writes
        assert "kept Contact.Experiment_Arm__c" in lines
        assert not [line for line in lines if line.startswith("would create")]

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
