"""The `leadlift` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from integration.config import Settings, load_settings
from integration.errors import ConfigError, LeadliftError

console = Console(stderr=True)
out = Console()


def _fail(message: str, code: int) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn leadlift's errors into a one-line message and an exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            _fail(exc.message, 2)
        except LeadliftError as exc:
            _fail(exc.message, 1)

    return wrapper


def _settings() -> Settings:
    return load_settings()


def _store(settings: Settings, upgrade: bool = True):
    from integration.store import Store

    store = Store(settings.store_url)
    if upgrade and settings.embedded:
        # The embedded SQLite store is ours to manage; a shared database is
        # upgraded deliberately with `leadlift db upgrade`.
        store.upgrade()
    elif not store.is_current():
        raise ConfigError(
            f"database schema is not current ({store.current_revision()} != "
            f"{store.head_revision()}): run `leadlift db upgrade`"
        )
    return store


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadlift")
def cli() -> None:
    """leadlift: propensity and uplift scores written back into Salesforce and HubSpot."""


# -- database ---------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@handled
def db_upgrade() -> None:
    """Apply Alembic migrations to the configured database."""
    from integration.store import Store

    settings = _settings()
    store = Store(settings.store_url)
    before = store.current_revision()
    store.upgrade()
    console.print(f"schema {before or 'empty'} → {store.current_revision()} ({store.dialect})")


# -- connections ------------------------------------------------------------------------


@cli.group()
def connect() -> None:
    """Connect a CRM with an existing token (stored encrypted)."""


def _verify_option(ca_file: str | None) -> dict[str, Any]:
    return {"verify": ca_file} if ca_file else {}


@connect.command("salesforce")
@click.option("--oauth", "use_oauth", is_flag=True, help="Sign in through the browser (PKCE).")
@click.option(
    "--jwt-key",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Server-to-server: PEM key of the app's certificate (JWT bearer).",
)
@click.option("--username", default=None, help="With --jwt-key: the integration user.")
@click.option(
    "--instance-url", default=None, help="With --access-token: https://acme.my.salesforce.com"
)
@click.option("--access-token", default=None, help="An existing session id or access token.")
@click.option("--refresh-token", default=None, help="With --access-token: lets leadlift refresh.")
@click.option(
    "--login-url", default=None, help="login.salesforce.com, test.salesforce.com or My Domain."
)
@click.option(
    "--port",
    default=8723,
    show_default=True,
    help="Loopback port of the OAuth callback (register http://localhost:PORT/callback).",
)
@click.option("--name", default="salesforce", show_default=True, help="Connection name.")
@click.option("--ca-file", default=None, help="CA bundle to trust (self-hosted TLS).")
@handled
def connect_salesforce(
    use_oauth: bool,
    jwt_key: str | None,
    username: str | None,
    instance_url: str | None,
    access_token: str | None,
    refresh_token: str | None,
    login_url: str | None,
    port: int,
    name: str,
    ca_file: str | None,
) -> None:
    """Connect a Salesforce org: browser OAuth, JWT bearer, or an existing session."""
    from integration import connect as flows

    settings = _settings()
    store = _store(settings)
    if use_oauth:
        result = flows.connect_salesforce_oauth(
            store, settings, name, login_url, ca_file, port=port,
            announce=lambda url: console.print(f"opening {url}", soft_wrap=True, markup=False),
        )  # fmt: skip
    elif jwt_key:
        if not username:
            raise ConfigError("--username: required with --jwt-key")
        result = flows.connect_salesforce_jwt(
            store, settings, username, jwt_key, name, login_url, ca_file
        )
    elif access_token and instance_url:
        result = flows.connect_salesforce_token(
            store, settings, instance_url, access_token, refresh_token, name, login_url, ca_file
        )
    else:
        raise ConfigError("choose --oauth, --jwt-key with --username, or --instance-url with "
                          "--access-token")  # fmt: skip
    console.print(f"connected [bold]{name}[/] → org {result['org']} ({result['org_id']})")


@connect.command("hubspot")
@click.option("--oauth", "use_oauth", is_flag=True, help="Install through the browser.")
@click.option("--access-token", default=None, help="A private-app or OAuth access token.")
@click.option("--refresh-token", default=None)
@click.option("--api-base", default=None, help="API host (EU portals, a proxy, the sandbox).")
@click.option("--port", default=8723, show_default=True, help="Loopback port of the callback.")
@click.option("--name", default="hubspot", show_default=True, help="Connection name.")
@click.option("--ca-file", default=None, help="CA bundle to trust (self-hosted TLS).")
@click.option(
    "--requests-per-10s",
    type=int,
    default=None,
    help="This portal's limit (default LEADLIFT_HUBSPOT_REQUESTS_PER_10S); 0 = no limiter.",
)
@handled
def connect_hubspot(
    use_oauth: bool,
    access_token: str | None,
    refresh_token: str | None,
    api_base: str | None,
    port: int,
    name: str,
    ca_file: str | None,
    requests_per_10s: int | None,
) -> None:
    """Connect a HubSpot portal: browser OAuth or an existing token."""
    from integration import connect as flows

    settings = _settings()
    store = _store(settings)
    limits = None
    if requests_per_10s is not None:
        limits = (
            {"per_10_seconds": None, "search_per_second": None}
            if requests_per_10s == 0
            else {"per_10_seconds": requests_per_10s}
        )
    if use_oauth:
        result = flows.connect_hubspot_oauth(
            store, settings, name, api_base, ca_file=ca_file, port=port, rate_limits=limits,
            announce=lambda url: console.print(f"opening {url}", soft_wrap=True, markup=False),
        )  # fmt: skip
    elif access_token:
        result = flows.connect_hubspot_token(
            store, settings, access_token, refresh_token, name, api_base, ca_file, limits
        )
    else:
        raise ConfigError("choose --oauth or --access-token")
    console.print(f"connected [bold]{name}[/] → portal {result['portal'] or '(private app)'}")


# -- pipeline ---------------------------------------------------------------------------

connection_option = click.option("--connection", "-c", default=None, help="Connection name.")


def _reporter():
    from integration.progress import RichReporter

    return RichReporter(console)


@cli.command()
@connection_option
@click.option("--train/--no-force-train", "force_train", default=False, help="Retrain now.")
@click.option("--json", "as_json", is_flag=True, help="Print the cycle report as JSON.")
@handled
def run(connection: str | None, force_train: bool, as_json: bool) -> None:
    """One full cycle: sync → train when due → score → write back."""
    from integration.pipeline import run_cycle

    settings = _settings()
    store = _store(settings)
    with _reporter() as reporter:
        report = run_cycle(store, settings, connection, reporter, force_train=force_train)
    data = report.as_dict()
    if as_json:
        _print_json(data)
        return
    _print_cycle(data)


def _print_cycle(data: dict[str, Any]) -> None:
    from integration.model_card import scored_line, trained_lines

    pulled = sum(s["pulled"] for s in data["synced"].values())
    out.print(f"[bold]{data['connection']}[/] ({data['crm']}): pulled {pulled} rows")
    if data["trained"]:
        for line in trained_lines(data["trained"]):
            out.print(f"  {line}", highlight=False)
    if data["training_skipped"]:
        out.print(f"  [yellow]model: {data['training_skipped']}[/]")
    if data["scored"]:
        s = data["scored"]
        out.print(f"  {scored_line(s)}", highlight=False)
    if data["writeback"]:
        w = data["writeback"]
        out.print(f"  wrote {w['succeeded']}/{w['attempted']} records, {w['failed']} failed")
        for error in w["errors"]:
            out.print(f"    [red]{error}[/]")
    out.print(f"  API calls: {data['api_calls']}")


@cli.command()
@connection_option
@click.option("--object", "objects", multiple=True, help="Only these CRM objects.")
@handled
def sync(connection: str | None, objects: tuple[str, ...]) -> None:
    """Incremental sync of one connection into the store."""
    from integration.connections import build_connector, get_connection
    from integration.pipeline import run_sync

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    connector = build_connector(store, settings, conn)
    with _reporter() as reporter:
        result = run_sync(store, settings, conn, connector, reporter, list(objects) or None)
    for obj, stats in result.items():
        out.print(f"{obj:<14} pulled {stats['pulled']:>8}  written {stats['written']:>8}")


@cli.command()
@connection_option
@click.option("--json", "as_json", is_flag=True)
@handled
def readiness(connection: str | None, as_json: bool) -> None:
    """The data-readiness checklist: can this history support an ML score?"""
    from integration.admin_views import readiness_report
    from integration.connections import get_connection
    from integration.store.models import utcnow

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    data = readiness_report(store, conn.id, utcnow())
    if as_json:
        _print_json(data)
        return
    table = Table("check", "value", "threshold", "status", "what to fix", box=None)
    colours = {"pass": "green", "warn": "yellow", "fail": "red"}
    for check in data["checks"]:
        value = check["value"]
        table.add_row(
            check["name"], f"{value:,.3g}" if isinstance(value, float) else str(value),
            str(check["threshold"]), f"[{colours[check['status']]}]{check['status']}[/]",
            check["fix"] if check["status"] != "pass" else "",
        )  # fmt: skip
    out.print(table)
    verdict = "ML model" if data["mode"] == "ml" else "rules/fit score (below the floor)"
    out.print(f"mode: {verdict}: {data['why']}", highlight=False)
    if data.get("hygiene"):
        h = data["hygiene"]
        out.print(
            f"hygiene: {h['merged']} duplicate leads collapsed ({h['duplicates']}), "
            f"unmapped values {h['unmapped'] or 'none'} — nothing is written back",
            highlight=False,
        )


@cli.command()
@connection_option
@handled
def train(connection: str | None) -> None:
    """Train new propensity and uplift versions (promoted only if they beat the active ones)."""
    from integration.connections import get_connection
    from integration.pipeline import run_train

    settings = _settings()
    store = _store(settings)
    result = run_train(store, settings, get_connection(store, connection))
    from integration.model_card import trained_lines

    for line in trained_lines(result):
        out.print(line, highlight=False)


@cli.command()
@connection_option
@handled
def score(connection: str | None) -> None:
    """Score and route every open lead (live experiments assign their new units first)."""
    from integration.connections import get_connection
    from integration.experiment_cycle import run_experiments
    from integration.features import load_frames
    from integration.model_card import scored_line
    from integration.pipeline import run_score
    from integration.store.models import utcnow

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    now = utcnow()
    frames = load_frames(store, conn.id)
    arms = run_experiments(store, conn.id, now, frames).arms()
    with _reporter() as reporter:
        result = run_score(store, conn, reporter, now, settings, arms, frames)
    out.print(scored_line(result), highlight=False)


@cli.command()
@connection_option
@click.option("--dry-run", is_flag=True, help="Print the plan and its API calls; push nothing.")
@click.option("--max-calls", type=int, default=None, help="API calls this run may spend.")
@click.option("--json", "as_json", is_flag=True, help="End with the plan or report as JSON.")
@handled
def writeback(connection: str | None, dry_run: bool, max_calls: int | None, as_json: bool) -> None:
    """Push what changed materially since the last push (fields, then owners)."""
    from integration.connections import build_connector, get_connection
    from integration.pipeline import run_writeback

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    connector = build_connector(store, settings, conn)
    with _reporter() as reporter:
        report = run_writeback(
            store, settings, conn, connector, reporter, dry_run=dry_run, max_calls=max_calls
        )
    plan = report.plan
    if not as_json:
        verb = "would be" if dry_run else "were"
        out.print(
            f"{plan['records']} records {'would be' if dry_run else 'to be'} updated "
            f"({plan['field_updates']} fields; "
            f"new {plan['by_priority']['new']}, changed {plan['by_priority']['change']}, "
            f"refreshed {plan['by_priority']['refresh']}), {plan['owner_updates']} owner "
            f"changes, {plan['api_calls']} API calls"
            + (f" (budget {plan['max_calls']})" if plan["max_calls"] else ""),
            highlight=False,
        )
        if plan["deferred_records"] or plan["deferred_owner_updates"]:
            out.print(
                f"deferred to the next run: {plan['deferred_records']} records, "
                f"{plan['deferred_owner_updates']} owner changes"
            )
        if plan["manual_owners_kept"]:
            out.print(f"kept {plan['manual_owners_kept']} owners set by hand")
        if not dry_run:
            out.print(
                f"{report.succeeded}/{report.attempted} records and {report.owners_assigned} "
                f"owners {verb} written, {len(report.errors)} failed, {report.api_calls} API calls"
            )
        return
    data = {
        "leads_changed": plan["leads_changed"], "field_updates": plan["field_updates"],
        "owner_updates": plan["owner_updates"], "api_calls": plan["api_calls"],
        "dry_run": dry_run, "plan": plan,
        **({} if dry_run else {"succeeded": report.succeeded, "failed": len(report.errors),
                                "api_calls_spent": report.api_calls}),
    }  # fmt: skip
    print(json.dumps(data, default=str))


@cli.group()
def fields() -> None:
    """leadlift's custom fields in the CRM."""


@fields.command("install")
@connection_option
@click.option("--dry-run", is_flag=True, help="List what would be created; change nothing.")
@handled
def fields_install(connection: str | None, dry_run: bool) -> None:
    """Create leadlift's custom fields and grant access to them (existing ones are kept)."""
    from integration.connections import build_connector, get_connection
    from integration.fields import field_specs
    from integration.pipeline import install_configured_fields, tracked

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    connector = build_connector(store, settings, conn)
    with tracked(store, conn, connector):
        report = install_configured_fields(
            store, settings, conn, connector, list(field_specs(settings).values()), dry_run
        )
    verb = "would create" if dry_run else "created"
    for component in report.components:
        out.print(f"{verb:>12}  {component.kind:<26} {component.name}", highlight=False)
    for name in report.existing:
        out.print(f"{'kept':>12}  {'':<26} {name}", highlight=False)
    for name in report.clashes:
        out.print(f"[red]{'clash':>12}  {'custom_field':<26} {name}[/]", highlight=False)
    if report.clashes:
        console.print("type clashes are never overwritten: rename or remove those fields")
        sys.exit(1)


@fields.command("uninstall")
@connection_option
@click.option("--yes", is_flag=True, help="Really remove (without it: a dry run).")
@handled
def fields_uninstall(connection: str | None, yes: bool) -> None:
    """Remove exactly what leadlift created (fields, permission set…). Dry run unless --yes."""
    from integration.connections import build_connector, get_connection
    from integration.install import uninstall
    from integration.pipeline import tracked

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    connector = build_connector(store, settings, conn)
    with tracked(store, conn, connector):
        report = uninstall(store, conn, connector, dry_run=not yes)
    verb = "removed" if yes else "would remove"
    for item in report.removed:
        out.print(f"{verb:>12}  {item}", highlight=False)
    if not report.removed:
        out.print("nothing leadlift created is recorded for this connection")
    elif not yes:
        console.print("dry run: add --yes to remove these")


@cli.command()
@connection_option
@click.option("--queue", "queue_name", required=True, help="Queue (or user id) to route to.")
@click.option("--top", default=100, show_default=True, help="How many leads, best score first.")
@click.option("--dry-run", is_flag=True, help="Only list what would be assigned.")
@handled
def assign(connection: str | None, queue_name: str, top: int, dry_run: bool) -> None:
    """Route the highest-scored open leads to a queue (sets the CRM owner)."""
    from integration.assignment import assign_top
    from integration.connections import build_connector, get_connection
    from integration.pipeline import tracked

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    connector = build_connector(store, settings, conn)
    with tracked(store, conn, connector):
        result = assign_top(store, conn, connector, queue_name, top, dry_run=dry_run)
    verb = "would assign" if dry_run else "assigned"
    out.print(f"{verb} {result['assigned']} leads to {result['queue']}", highlight=False)
    for error in result["errors"]:
        out.print(f"  [red]{error}[/]", highlight=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handled
def status(as_json: bool) -> None:
    """Connections, last sync per object, active model, last write-back."""
    from integration.status import status as build_status

    settings = _settings()
    data = build_status(_store(settings, upgrade=settings.embedded))
    if as_json:
        _print_json(data)
        return
    out.print(f"store: {data['store']}")
    if not data["connections"]:
        out.print("no connections yet: `leadlift connect salesforce|hubspot` or `leadlift demo`")
    for conn in data["connections"]:
        out.print(f"\n[bold]{conn['name']}[/] ({conn['crm']}, {conn['status']}) {conn['instance']}")
        rows = conn["rows"]
        out.print("  rows: " + ", ".join(f"{k} {v}" for k, v in rows.items()))
        table = Table("object", "status", "last sync", "pulled", "written", box=None)
        for s in conn["sync"]:
            table.add_row(
                s["object"], s["status"] or "", (s["finished_at"] or "")[:19],
                str(s["pulled"] or 0), str(s["written"] or 0),
            )  # fmt: skip
        out.print(table)
        model = conn["active_model"]
        if model:
            auc = model["held_out_auc"]
            out.print(
                f"  model: {model['kind']} v{model['version']} ({model['estimator']}, "
                f"{model['mode']} mode), held-out AUC "
                + (f"{auc:.3f}" if auc is not None else "not measured")
                + f", trained {model['trained_at'][:19]}"
            )
        uplift = conn.get("active_uplift_model")
        if uplift:
            qini = uplift["held_out_qini"]
            out.print(
                f"  uplift: v{uplift['version']} ({uplift['estimator']}) for "
                + ", ".join(uplift["actions"] or [])
                + ", held-out Qini "
                + (f"{qini:.3f}" if qini is not None else "not measured")
            )
        else:
            out.print("  model: none active")
        wb = conn["last_writeback"]
        if wb:
            out.print(
                f"  last write-back: {wb['status']} at {(wb['finished_at'] or '')[:19]}, "
                f"{wb['succeeded']} ok, {wb['failed']} failed"
            )
            for error in wb["errors"]:
                out.print(f"    [red]{error}[/]")
        api = conn["api"]
        line = f"  API: leadlift {api['leadlift_calls_24h']} calls in 24 h"
        if api.get("crm_limit"):
            line += f"; org {api['crm_used']}/{api['crm_limit']} today"
        out.print(line, highlight=False)
        for field_name, values in (conn["unmapped"] or {}).items():
            shown = ", ".join(f"{v!r} ({n})" for v, n in list(values.items())[:5])
            out.print(f"  [yellow]unmapped {field_name}: {shown}[/]", highlight=False)
        if conn["records_awaiting_retry"]:
            out.print(f"  records awaiting retry: {conn['records_awaiting_retry']}")


# -- models and explanations ------------------------------------------------------------


@cli.group()
def models() -> None:
    """The model registry: versions, their metrics and cards, which one is active."""


@models.command("list")
@connection_option
@click.option("--json", "as_json", is_flag=True)
@handled
def models_list(connection: str | None, as_json: bool) -> None:
    """Every model version with its status and headline held-out metric."""
    from integration.connections import get_connection
    from integration.registry import versions

    settings = _settings()
    store = _store(settings)
    rows = versions(store, get_connection(store, connection).id)
    data = [
        {
            "kind": r.kind, "version": r.version, "status": r.status,
            "trained_at": r.trained_at.isoformat(), "estimator": (r.params or {}).get("estimator"),
            "held_out": (r.metrics or {}).get("held_out", {}),
        }
        for r in rows
    ]  # fmt: skip
    if as_json:
        _print_json(data)
        return
    table = Table("kind", "version", "status", "trained", "estimator", "held-out", box=None)
    for d in data:
        headline = {k: d["held_out"][k] for k in ("auc", "qini_auc") if k in d["held_out"]}
        table.add_row(
            d["kind"], f"v{d['version']}", d["status"], d["trained_at"][:16],
            str(d["estimator"]), ", ".join(f"{k} {v:.3f}" for k, v in headline.items()),
        )  # fmt: skip
    out.print(table)


@models.command("show")
@click.argument("version", type=int)
@connection_option
@click.option("--kind", default="propensity", show_default=True)
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the card with its plots to this HTML file.")  # fmt: skip
@handled
def models_show(version: int, connection: str | None, kind: str, html_path: str | None) -> None:
    """A version's model card: data, measurements, readiness."""
    from pathlib import Path

    from integration.connections import get_connection
    from integration.model_card import html_card, text_card
    from integration.registry import get_version

    settings = _settings()
    store = _store(settings)
    row = get_version(store, get_connection(store, connection).id, kind, version)
    out.print(text_card(row), highlight=False, markup=False)
    if html_path:
        Path(html_path).write_text(html_card(row))
        console.print(f"card written to {html_path}")


@models.command("activate")
@click.argument("version", type=int)
@connection_option
@click.option("--kind", default="propensity", show_default=True)
@handled
def models_activate(version: int, connection: str | None, kind: str) -> None:
    """Make a version the one that scores (overrides the backtest's decision)."""
    from integration.connections import get_connection
    from integration.registry import activate

    settings = _settings()
    store = _store(settings)
    row = activate(store, get_connection(store, connection).id, kind, version)
    out.print(f"{row.kind} v{row.version} is now active; the next scoring pass uses it")


@cli.command()
@click.argument("lead")
@connection_option
@click.option("--json", "as_json", is_flag=True)
@handled
def explain(lead: str, connection: str | None, as_json: bool) -> None:
    """A lead's score history: each score, its reasons and the model that gave it."""
    from integration.connections import get_connection
    from integration.explain import score_history

    settings = _settings()
    store = _store(settings)
    history = score_history(store, get_connection(store, connection).id, lead)
    if as_json:
        _print_json(history)
        return
    out.print(f"[bold]{history['lead']}[/] {history.get('name') or ''}", highlight=False)
    for entry in history["scores"]:
        tag = " (shadow)" if entry["shadow"] else ""
        out.print(
            f"{entry['scored_at'][:19]}  score {entry['score']:>3}  {entry['bucket'] or '':<10}"
            f" {entry['segment'] or '':<15} {entry['action'] or '':<15}"
            f" model {entry['model']}{tag}",
            highlight=False,
        )
        for reason in entry["reasons"]:
            out.print(f"      {reason}", highlight=False, markup=False)
        if entry.get("changed"):
            out.print(f"      changed: {entry['changed']}", highlight=False, markup=False)


# -- experiments ------------------------------------------------------------------------


@cli.group()
def experiments() -> None:
    """Holdout experiments: define, start, pause, stop, read out."""


@experiments.command("create")
@connection_option
@click.option(
    "--file",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML policy file with an `experiments:` list (all are created).",
)
@click.option("--key", help="Slug, e.g. q4_call_first.")
@click.option("--name", help="What it tests, in words.")
@click.option(
    "--action",
    "actions",
    multiple=True,
    metavar="NAME=DEFINITION",
    help="An action and its exact versioned definition; repeat for multi-arm.",
)
@click.option("--holdout", "holdout_share", type=float, default=0.2, show_default=True)
@click.option(
    "--unit", type=click.Choice(["account", "lead"]), default="account", show_default=True
)
@click.option(
    "--stratum",
    "strata",
    multiple=True,
    help="tier, size_band, region, source or intent; repeatable (default: tier).",
)
@click.option("--window-days", type=int, default=21, show_default=True)
@click.option("--start", "start_now", is_flag=True, help="Start it at once.")
@handled
def experiments_create(
    connection: str | None, policy_file: str | None, key: str | None, name: str | None,
    actions: tuple[str, ...], holdout_share: float, unit: str, strata: tuple[str, ...],
    window_days: int, start_now: bool,
) -> None:  # fmt: skip
    """Create experiments (drafts, unless --start) from flags or a policy file."""
    from integration.connections import get_connection
    from integration.experiments.registry import create, start
    from integration.experiments.spec import load_policy_file, parse_spec

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    if policy_file:
        specs = load_policy_file(policy_file)
    else:
        if not (key and actions):
            raise click.UsageError("give --file, or --key and at least one --action")
        pairs = [a.split("=", 1) for a in actions]
        if any(len(p) != 2 for p in pairs):
            raise click.UsageError("--action takes NAME=DEFINITION")
        specs = [
            parse_spec(
                {"key": key, "name": name or key, "actions": dict(pairs),
                 "holdout_share": holdout_share, "unit": unit,
                 "strata": list(strata) or ["tier"], "window_days": window_days},
                "--options",
            )
        ]  # fmt: skip
    for spec in specs:
        row = create(store, conn.id, spec)
        if start_now:
            row = start(store, conn.id, spec.key)
        out.print(f"{row.key}: {row.status} ({', '.join(spec.actions)} vs "
                  f"{spec.holdout_share:.0%} holdout by {spec.unit})", highlight=False)  # fmt: skip


@experiments.command("list")
@connection_option
@click.option("--json", "as_json", is_flag=True)
@handled
def experiments_list(connection: str | None, as_json: bool) -> None:
    """Every experiment with its status."""
    from integration.connections import get_connection
    from integration.experiments.registry import describe, list_experiments

    settings = _settings()
    store = _store(settings)
    rows = [describe(r) for r in list_experiments(store, get_connection(store, connection).id)]
    if as_json:
        _print_json(rows)
        return
    table = Table("key", "status", "actions", "holdout", "unit", "started", box=None)
    for r in rows:
        table.add_row(r["key"], r["status"], ", ".join(r["actions"]), f"{r['holdout_share']:.0%}",
                      r["unit"], (r["started_at"] or "")[:16])  # fmt: skip
    out.print(table)


def _experiment_transition(verb: str):
    @experiments.command(verb)
    @click.argument("key")
    @connection_option
    @handled
    def command(key: str, connection: str | None) -> None:
        from integration.connections import get_connection
        from integration.experiments import registry

        settings = _settings()
        store = _store(settings)
        row = getattr(registry, verb)(store, get_connection(store, connection).id, key)
        out.print(f"{row.key}: {row.status}")

    command.__doc__ = {
        "start": "Start assigning units (draft → running).",
        "pause": "Stop assigning new units; existing arms stay (running → paused).",
        "resume": "Assign again (paused → running).",
        "stop": "End the experiment for good; its arms stay for the readout.",
    }[verb]
    return command


for _verb in ("start", "pause", "resume", "stop"):
    _experiment_transition(_verb)


@experiments.command("show")
@click.argument("key", required=False)
@connection_option
@click.option("--past", is_flag=True, help="Read out the experiments recorded on leads "
              "before leadlift (their Experiment_Arm labels).")  # fmt: skip
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the readout (with plots and operating metrics) here.",
)
@click.option("--json", "as_json", is_flag=True)
@handled
def experiments_show(
    key: str | None, connection: str | None, past: bool, html_path: str | None, as_json: bool
) -> None:
    """An experiment's definition and readout: uplift with intervals, per stratum, SRM."""
    from pathlib import Path

    from integration.connections import get_connection
    from integration.experiment_readout import experiment_readout

    settings = _settings()
    store = _store(settings)
    conn = get_connection(store, connection)
    if not key and not past:
        raise click.UsageError("give an experiment KEY, or --past")
    result = experiment_readout(store, conn.id, key, settings, html=bool(html_path))
    if html_path:
        Path(html_path).write_text(result["html"])
        console.print(f"readout written to {html_path}")
    if as_json:
        _print_json({k: v for k, v in result.items() if k != "html"})
        return
    if result.get("experiment"):
        e = result["experiment"]
        out.print(f"[bold]{e['key']}[/] {e['name']} — {e['status']}", highlight=False)
        for action, definition in e["actions"].items():
            out.print(f"  {action}: {definition}", highlight=False, markup=False)
    out.print(result["text"], highlight=False, markup=False)


# -- sandbox, web, demo -----------------------------------------------------------------


@cli.group()
def sandbox() -> None:
    """The local sandbox CRM (Salesforce and HubSpot wire formats)."""


@sandbox.command("serve")
@click.option("--leads", default=20_000, show_default=True, help="Synthetic leads to seed.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the world.")
@click.option("--port", default=8443, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@handled
def sandbox_serve(leads: int, seed: int, port: int, host: str) -> None:
    """Serve a seeded sandbox CRM over HTTPS until interrupted."""
    from integration.demo import serve_sandbox

    serve_sandbox(_settings(), leads, seed, host, port, console)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
@handled
def web(host: str, port: int, workers: int, dev: bool) -> None:
    """Serve the web app (OAuth connect, webhooks, admin UI, /metrics) under gunicorn."""
    settings = _settings()
    if dev:
        from integration.web import create_app

        create_app(settings).run(host=host, port=port)
        return
    from integration.web.server import serve

    # With a broker, the web process hands webhook events to the workers: the app
    # with Celery's dispatch installed, named as the Procfile names it.
    app = "tasks.webhooks:web_app()" if settings.broker_url else "integration.web:create_app()"
    serve(app, f"{host}:{port}", workers)


@cli.command()
@click.option("--leads", default=15_000, show_default=True, help="Synthetic leads.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the world.")
@click.option(
    "--crm",
    type=click.Choice(["salesforce", "hubspot", "both"]),
    default="both",
    show_default=True,
)
@handled
def demo(leads: int, seed: int, crm: str) -> None:
    """The whole cycle against the bundled sandbox CRM; prints a summary and a JSON line."""
    from integration.demo import run_demo

    summary = run_demo(_settings(), leads=leads, seed=seed, crms=crm, console=console)
    print(json.dumps(summary, default=str), flush=True)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
