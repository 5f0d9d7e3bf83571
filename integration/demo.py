"""`leadlift demo`: the real pipeline, pointed at the bundled sandbox CRM.

It generates a synthetic world, serves it over HTTPS in both CRMs' wire
formats, connects through each CRM's OAuth flow, and runs the very same
`run_cycle` a production connection runs. Then it reads a sample of the
written fields back through the connector to show they landed.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from connectors.http import retrying_session
from connectors.sandbox import SandboxConfig, SandboxCRM, SandboxServer, serve
from integration.config import Settings
from integration.connect import connect_hubspot_oauth, connect_salesforce_oauth
from integration.connections import build_connector, get_connection
from integration.demo_web import WebResult, summary_rows, tour_lines, web_tour
from integration.experiment_readout import experiment_readout
from integration.experiments.registry import create, start
from integration.experiments.spec import parse_spec
from integration.explain import score_history
from integration.features import build_features, load_frames
from integration.model_card import html_card, scored_line, trained_lines
from integration.modeling import best_action_gain, true_at_k
from integration.pipeline import run_cycle, tracked
from integration.progress import RichReporter
from integration.registry import active
from integration.scoring import latest_scores
from integration.store import Store
from integration.store.models import Writeback
from integration.training import active_model, load_estimator
from integration.world import World, generate_world

READ_BACK_SAMPLE = 200
# The sandbox portal enforces no rate limits unless configured to; HubSpot's real ones
# (100 calls per 10 s) would make the demo wait for nothing.
SANDBOX_UNLIMITED = {"per_10_seconds": None, "search_per_second": None}


@dataclass
class CrmResult:
    crm: str
    connection: str
    leads_synced: int = 0
    rows_synced: int = 0
    auc: float | None = None
    estimator: str | None = None
    fields_written: int = 0
    write_errors: int = 0
    fields_read_back: int = 0
    read_back_sample: int = 0
    api_calls: int = 0
    truth_spearman: float | None = None
    components_installed: int = 0
    ece: float | None = None
    uplift_estimator: str | None = None
    qini: float | None = None
    uplift_truth: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    cards: list[str] = field(default_factory=list)
    routed: int = 0
    routed_read_back: int = 0
    experiment_units: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    spilled: int = 0
    owners_moved: int = 0
    readout: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _today() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def demo_settings(settings: Settings) -> Settings:
    """The demo keeps its own embedded store, so it never touches a real one."""
    return settings.model_copy(
        update={
            "home": settings.home / "demo",
            "database_url": None,
            # Show the score where reps look: on the layouts and in a top-leads list view.
            "salesforce_layouts": ("Lead-Lead Layout", "Contact-Contact Layout"),
            "salesforce_list_view": True,
            # The sandbox's leads all belong to reps; the demo lets routing move them.
            "overwrite_manual_owners": True,
            "routing_policy": settings.home / "demo" / "routing.yaml",
        }
    )


DEMO_SENIOR_CAPACITY = 150
DEMO_EXPERIMENT = {
    "key": "demo_outreach_v2",
    "name": "Call first vs a 4-step email sequence, against a 20% holdout",
    "actions": {
        "call_first": "call within 1 business day, 3 attempts over 5 days v2",
        "email_sequence": "10-day 4-step email sequence v3",
    },
    "holdout_share": 0.2,
    "unit": "account",
    "strata": ["tier", "intent"],
}


def write_demo_policy(path: Path) -> None:
    """The packaged routing policy with a daily capacity on the senior-AE queue, so the
    demo shows the top bucket overflowing into the AE queue."""
    policy = yaml.safe_load((files("integration.routing") / "default_policy.yaml").read_text())
    policy["queues"]["senior_ae_now"]["capacity_per_day"] = DEMO_SENIOR_CAPACITY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(policy, sort_keys=False, allow_unicode=True))


def _scripted_browser(ca_file: str):
    """Play the admin's browser: the sandbox approves at once and redirects to leadlift's
    loopback callback, exactly as a real org would after the admin clicks Allow."""
    session = retrying_session(verify=ca_file)

    def open_url(url: str) -> None:
        response = session.get(url, allow_redirects=True)
        response.raise_for_status()

    return open_url


def connect_salesforce(
    store: Store, settings: Settings, server: SandboxServer, config: SandboxConfig
) -> str:
    """The `leadlift connect salesforce --oauth` flow (PKCE and state) against the sandbox."""
    result = connect_salesforce_oauth(
        store, settings, "demo-salesforce", login_url=server.url, ca_file=server.ca_file,
        open_browser=_scripted_browser(server.ca_file), announce=lambda _url: None,
        client=(config.salesforce_client_id, config.salesforce_client_secret),
    )  # fmt: skip
    return result["name"]


def connect_hubspot(
    store: Store, settings: Settings, server: SandboxServer, config: SandboxConfig
) -> str:
    """The `leadlift connect hubspot --oauth` flow (state) against the sandbox."""
    result = connect_hubspot_oauth(
        store, settings, "demo-hubspot", api_base=server.url,
        authorize_base=f"{server.url}/oauth/authorize", ca_file=server.ca_file,
        open_browser=_scripted_browser(server.ca_file), announce=lambda _url: None,
        client=(config.hubspot_client_id, config.hubspot_client_secret),
        rate_limits=SANDBOX_UNLIMITED,
    )  # fmt: skip
    return result["name"]


def _read_back(store: Store, settings: Settings, name: str, crm_object: str) -> tuple[int, int]:
    """Re-read a sample of written records through the connector; count exact matches."""
    connection = get_connection(store, name)
    n = settings.fields
    names = [n.lead_score, n.lead_score_bucket, n.uplift_best_action, n.uplift_segment]
    with store.session() as session:
        rows = session.execute(
            select(Writeback.crm_id, Writeback.field_values)
            .where(Writeback.connection_id == connection.id, Writeback.status == "ok")
            .order_by(Writeback.id)
        ).all()
    if not rows:
        return 0, 0
    picked = random.Random(0).sample(rows, min(READ_BACK_SAMPLE, len(rows)))
    connector = build_connector(store, settings, connection)
    current = connector.read_fields(crm_object, [r.crm_id for r in picked], names)
    matches = sum(
        1
        for r in picked
        if all(
            _same(current.get(r.crm_id, {}).get(f), r.field_values[f])
            for f in names
            if f in r.field_values
        )
    )
    return matches, len(picked)


def _same(read: Any, written: Any) -> bool:
    if isinstance(written, str):
        return read == written
    try:
        return float(read) == float(written)
    except (TypeError, ValueError):
        return False


def _truth_keys(world: World, crm: str, server: SandboxServer) -> dict[str, int]:
    """CRM id → the world's lead key (the ground truth the CRM never sees)."""
    lookup = server.sandbox.salesforce if crm == "salesforce" else server.sandbox.hubspot
    obj = "Lead" if crm == "salesforce" else "contacts"
    return {lookup.id_for(obj, int(k)): int(k) for k in world.truth["lead_key"]}


def _truth_spearman(store: Store, name: str, world: World, keys: dict[str, int]) -> float | None:
    """Rank agreement between the model and the world's *true* propensity, on new leads
    of the held-out period (the model never trained on their outcomes' period)."""
    connection = get_connection(store, name)
    version = active_model(store, connection.id)
    model = load_estimator(version)
    if "split" not in (version.metrics or {}):
        return None
    test_from = pd.Timestamp(version.metrics["split"]["test_from"])
    frames = load_frames(store, connection.id)
    cutoffs = frames.leads["created_at"] + pd.Timedelta(days=1)
    leads = frames.leads[(cutoffs >= test_from) & (cutoffs <= version.cutoff)]
    if len(leads) < 10:
        return None
    panel = pd.DataFrame({"lead_crm_id": leads["crm_id"], "cutoff": cutoffs[leads.index]})
    predicted = model.predict_proba(build_features(frames, panel))[:, 1]
    truth = world.truth.set_index("lead_key")["p0"]
    paired = pd.DataFrame({"p": predicted, "key": [keys.get(i) for i in leads["crm_id"]]})
    paired = paired.dropna()
    paired["truth"] = truth.reindex(paired["key"].astype(int)).to_numpy()
    return float(paired["p"].corr(paired["truth"], method="spearman"))


def _truth_uplift(store: Store, name: str, world: World, keys: dict[str, int]) -> dict[str, Any]:
    """The stored uplift scores of every open lead against the world's true uplift:
    the best-action policy's true gain as a share of the oracle's, the mean true uplift
    of the top 20% per action as a share of the oracle's top 20%, and segment agreement."""
    connection = get_connection(store, name)
    scores = [s for s in latest_scores(store, connection.id) if (s.uplift or {}).get("by_action")]
    if not scores:
        return {}
    actions = sorted(scores[0].uplift["by_action"])
    truth = world.truth.set_index("lead_key")
    rows = [(keys.get(s.lead_crm_id), s) for s in scores]
    rows = [(k, s) for k, s in rows if k is not None]
    true_tau = truth.loc[[k for k, _ in rows], [f"tau_{a}" for a in actions]].to_numpy(float)
    predicted = np.array([[s.uplift["by_action"][a] for a in actions] for _, s in rows])
    oracle = best_action_gain(true_tau, true_tau)
    true_segment = truth.loc[[k for k, _ in rows], "segment"].to_numpy(dtype=object)
    segment = np.array([s.segment for _, s in rows], dtype=object)
    return {
        "leads": len(rows),
        "policy_share_of_oracle": best_action_gain(true_tau, predicted) / oracle,
        "true_at_20": float(
            np.mean([true_at_k(true_tau[:, j], predicted[:, j], 0.2) for j in range(len(actions))])
        ),
        "segment_agreement": float((segment == true_segment).mean()),
    }


def run_demo(
    settings: Settings,
    leads: int = 15_000,
    seed: int = 7,
    crms: str = "both",
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    started = time.perf_counter()
    settings = demo_settings(settings)
    shutil.rmtree(settings.home, ignore_errors=True)
    write_demo_policy(settings.routing_policy)
    store = Store(settings.store_url)
    store.upgrade()
    wanted = ("salesforce", "hubspot") if crms == "both" else (crms,)

    console.rule("[bold]leadlift demo")
    with console.status(f"generating a synthetic B2B world of {leads:,} leads"):
        world = generate_world(n_leads=leads, seed=seed, now=_today())
    control = world.truth[world.truth["arm"] == "control"]
    console.print(
        f"world: {leads:,} leads, {len(world.seed.accounts):,} accounts, "
        f"{len(world.seed.touches):,} touches, {len(world.seed.engagements):,} engagement events,"
        f" {len(world.seed.meetings):,} meetings booked (control rate "
        f"{control['meeting'].mean():.1%})"
    )
    config = SandboxConfig()
    results: list[CrmResult] = []
    with console.status("starting the sandbox CRM"):
        sandbox = SandboxCRM.from_seed(world.seed, config=config)
    with SandboxServer(sandbox) as server:
        console.print(f"sandbox CRM serving Salesforce and HubSpot APIs at {server.url}")
        for crm in wanted:
            results.append(_run_one(store, settings, server, config, world, crm, console))
        console.rule("[bold]service: web app, webhooks, workers' chunked pass")
        web = web_tour(
            store, settings, sandbox, server, {r.crm: r.connection for r in results}, leads, console
        )
        stats = sandbox.stats()
    for result in results:
        result.api_calls = stats.get(result.crm, {}).get("total", 0)
    seconds = time.perf_counter() - started
    _print_summary(console, results, seconds, web)
    store.dispose()
    return _summary(results, seconds) | {"service": summary_rows(web)}


def _run_one(store, settings, server, config, world, crm, console) -> CrmResult:
    t0 = time.perf_counter()
    console.rule(f"[bold]{crm}")
    connect = connect_salesforce if crm == "salesforce" else connect_hubspot
    name = connect(store, settings, server, config)
    console.print(f"connected [bold]{name}[/] through the OAuth flow (tokens encrypted at rest)")
    connection = get_connection(store, name)
    spec = parse_spec(DEMO_EXPERIMENT, "demo")
    create(store, connection.id, spec)
    start(store, connection.id, spec.key)
    console.print(
        f"experiment {spec.key} started: {', '.join(spec.actions)} vs a "
        f"{spec.holdout_share:.0%} holdout, by {spec.unit}, stratified by "
        f"{' × '.join(spec.strata)}",
        highlight=False,
    )
    with RichReporter(console) as reporter:
        report = run_cycle(store, settings, name, reporter, force_train=True)
    result = CrmResult(crm, name)
    lead_object = "Lead" if crm == "salesforce" else "contacts"
    result.leads_synced = report.synced.get(lead_object, {}).get("pulled", 0)
    result.rows_synced = sum(s["pulled"] for s in report.synced.values())
    if report.trained:
        trained = report.trained
        result.auc = trained.get("auc")
        result.ece = trained.get("ece")
        result.estimator = f"{trained['estimator']} ({trained['mode']})"
        for line in trained_lines(trained):
            console.print(line, highlight=False)
        uplift = trained.get("uplift") or {}
        result.uplift_estimator = uplift.get("estimator")
        result.qini = uplift.get("qini_auc")
    if report.training_skipped:
        result.notes.append(report.training_skipped)
    if report.writeback:
        result.fields_written = report.writeback["succeeded"]
        result.write_errors = report.writeback["failed"]
    result.components_installed = report.fields.get("components", 0)
    result.fields_read_back, result.read_back_sample = _read_back(
        store, settings, name, lead_object
    )
    if report.scored:
        console.print(scored_line(report.scored), highlight=False)
        result.segments = report.scored.get("segments") or {}
        _explain_one(store, name, console)
        _experiment_and_routing(store, settings, name, lead_object, report, result, console)
    keys = _truth_keys(world, crm, server)
    result.readout = _past_readout(store, settings, name, world, console)
    result.truth_spearman = _truth_spearman(store, name, world, keys)
    result.uplift_truth = _truth_uplift(store, name, world, keys)
    result.cards = _write_cards(store, settings, name)
    result.seconds = time.perf_counter() - t0
    return result


def _experiment_and_routing(
    store, settings, name, lead_object, report, result: CrmResult, console: Console
) -> None:
    """What the cycle's experiment and routing did, and a read-back of arms and owners."""
    step = report.experiments.get(DEMO_EXPERIMENT["key"], {})
    result.experiment_units = step.get("units", {})
    scored = report.scored or {}
    result.queues = {k: v for k, v in (scored.get("queues") or {}).items() if k != "none"}
    result.spilled = scored.get("spilled", 0)
    plan = (report.writeback or {}).get("plan", {})
    result.owners_moved = (report.writeback or {}).get("owners_assigned", 0)
    console.print(
        f"experiment {DEMO_EXPERIMENT['key']}: units "
        + ", ".join(f"{arm} {n}" for arm, n in result.experiment_units.items())
        + f"; routed: {', '.join(f'{q} {n}' for q, n in result.queues.items())}"
        + f" ({result.spilled} spilled past the senior-AE capacity of {DEMO_SENIOR_CAPACITY})"
        + f"; {result.owners_moved} owners moved, {plan.get('api_calls', 0)} write-back calls",
        highlight=False,
    )
    connection = get_connection(store, name)
    connector = build_connector(store, settings, connection)
    with tracked(store, connection, connector):
        queues = {q.name: q.crm_id for q in connector.queues()}
        picked = [s for s in latest_scores(store, connection.id) if s.queue in queues][
            :READ_BACK_SAMPLE
        ]
        owners = connector.read_owners(lead_object, [s.lead_crm_id for s in picked])
    result.routed = len(picked)
    result.routed_read_back = sum(1 for s in picked if owners.get(s.lead_crm_id) == queues[s.queue])


def _past_readout(store, settings, name, world: World, console: Console) -> dict[str, Any]:
    """Read out the sandbox's past experiments (their arms are on the leads) and check each
    action's interval against the world's true average uplift in that experiment."""
    connection = get_connection(store, name)
    result = experiment_readout(store, connection.id, None, settings, html=True)
    folder = settings.home / "cards"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-past-experiments.html"
    path.write_text(result["html"])
    truth = world.truth[world.truth["arm"].notna()]
    covered, lines = 0, []
    pooled = [
        c for e in result["readout"]["experiments"] for c in e["comparisons"]
        if c["stratum"] == "all"
    ]  # fmt: skip
    for c in pooled:
        action = c["arm"] if c["arm"] != "treatment" else c["experiment"].rsplit("_v", 1)[0]
        column = f"tau_{action}"
        if column not in truth:
            continue
        true_pp = 100 * float(truth.loc[truth["action"] == action, column].mean())
        est = c["itt"]
        hit = est["ci_low_pp"] is not None and est["ci_low_pp"] <= true_pp <= est["ci_high_pp"]
        covered += hit
        lines.append(
            f"  {c['experiment']:<20} uplift {est['uplift_pp']:+.2f} pt "
            f"[{est['ci_low_pp']:+.2f}, {est['ci_high_pp']:+.2f}]  true {true_pp:+.2f} pt  "
            + ("covered" if hit else "NOT covered")
        )
    console.print("readout of the past experiments (95% intervals) vs the true uplift:")
    for line in lines:
        console.print(line, highlight=False)
    return {"covered": covered, "actions": len(lines), "html": str(path)}


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _explain_one(store: Store, name: str, console: Console) -> None:
    """Show the reasons a rep would read, for the top-scored open lead."""
    connection = get_connection(store, name)
    scores = latest_scores(store, connection.id)
    if not scores:
        return
    top = max(scores, key=lambda s: s.propensity)
    history = score_history(store, connection.id, top.lead_crm_id)
    latest = history["scores"][-1]
    console.print(
        f"top lead {history['lead']} ({history['name']}): score {latest['score']}, "
        f"{latest['bucket']}, {latest['segment'] or '-'}, best action {latest['action'] or '-'}"
        f"  (`leadlift explain {history['lead']}`)",
        highlight=False,
    )
    for line in latest["reasons"]:
        console.print(f"    {line}", highlight=False, markup=False)


def _write_cards(store: Store, settings: Settings, name: str) -> list[str]:
    """Each active model's card as HTML with its plots, next to the demo's store."""
    connection = get_connection(store, name)
    folder = settings.home / "cards"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in ("propensity", "uplift"):
        row = active(store, connection.id, kind)
        if row is not None:
            path = folder / f"{name}-{kind}-v{row.version}.html"
            path.write_text(html_card(row))
            written.append(str(path))
    return written


def _print_summary(
    console: Console, results: list[CrmResult], seconds: float, web: WebResult
) -> None:
    table = Table(title="leadlift demo summary")
    for column in ("", *(r.crm for r in results)):
        table.add_column(column, justify="right" if column else "left")
    rows = [
        ("leads synced", lambda r: f"{r.leads_synced:,}"),
        ("rows synced (all objects)", lambda r: f"{r.rows_synced:,}"),
        ("model", lambda r: r.estimator or "-"),
        ("held-out AUC, new leads", lambda r: f"{r.auc:.3f}" if r.auc else "-"),
        ("held-out calibration error (ECE)", lambda r: f"{r.ece:.4f}" if r.ece else "-"),
        ("rank corr. with true propensity", lambda r: f"{r.truth_spearman:.3f}"
         if r.truth_spearman is not None else "-"),
        ("uplift model", lambda r: r.uplift_estimator or "-"),
        ("held-out Qini (mean over actions)", lambda r: _num(r.qini)),
        ("best action: true gain / oracle's", lambda r: _pct(
            r.uplift_truth.get("policy_share_of_oracle"))),
        ("true uplift of top 20% / oracle's", lambda r: _pct(r.uplift_truth.get("true_at_20"))),
        ("segment agrees with truth", lambda r: _pct(r.uplift_truth.get("segment_agreement"))),
        ("persuadables found", lambda r: f"{r.segments.get('persuadable', 0):,}"),
        ("leads written (score fields)", lambda r: f"{r.fields_written:,}"),
        ("write errors", lambda r: str(r.write_errors)),
        ("read back (matched/sampled)", lambda r: f"{r.fields_read_back}/{r.read_back_sample}"),
        ("install components created", lambda r: str(r.components_installed)),
        ("past experiments: intervals cover truth", lambda r: (
            f"{r.readout['covered']}/{r.readout['actions']}" if r.readout else "-")),
        ("experiment units (arm: count)", lambda r: ", ".join(
            f"{a} {n}" for a, n in r.experiment_units.items()) or "-"),
        ("owners moved to routing queues", lambda r: f"{r.owners_moved:,}"),
        ("  spilled past capacity", lambda r: f"{r.spilled:,}"),
        ("  owners read back", lambda r: f"{r.routed_read_back}/{r.routed}"),
        ("API calls", lambda r: f"{r.api_calls:,}"),
        ("seconds", lambda r: f"{r.seconds:.1f}"),
    ]  # fmt: skip
    for label, fmt in rows:
        table.add_row(label, *(fmt(r) for r in results))
    console.print(table)
    for line in tour_lines(web):
        console.print(f"service: {line}", highlight=False)
    for r in results:
        for card in [*r.cards, *([r.readout["html"]] if r.readout else [])]:
            console.print(f"{r.crm}: model card {card}", highlight=False)
        for note in r.notes:
            console.print(f"[yellow]{r.crm}: {note}[/]")
    console.print(f"total time {seconds:.1f} s")


def _summary(results: list[CrmResult], seconds: float) -> dict[str, Any]:
    aucs = [r.auc for r in results if r.auc is not None]
    return {
        "leads_synced": sum(r.leads_synced for r in results),
        "auc": round(min(aucs), 4) if aucs else None,
        "fields_written": sum(r.fields_written for r in results),
        "fields_read_back": sum(r.fields_read_back for r in results),
        "api_calls": sum(r.api_calls for r in results),
        "seconds": round(seconds, 1),
        "crms": {
            r.crm: {
                "leads_synced": r.leads_synced,
                "auc": round(r.auc, 4) if r.auc else None,
                "truth_spearman": round(r.truth_spearman, 4) if r.truth_spearman else None,
                "ece": r.ece,
                "uplift_estimator": r.uplift_estimator,
                "qini_auc": r.qini,
                "uplift_truth": r.uplift_truth,
                "segments": r.segments,
                "fields_written": r.fields_written,
                "fields_read_back": r.fields_read_back,
                "read_back_sample": r.read_back_sample,
                "api_calls": r.api_calls,
                "components_installed": r.components_installed,
                "experiment_units": r.experiment_units,
                "queues": r.queues,
                "spilled": r.spilled,
                "owners_moved": r.owners_moved,
                "owners_read_back": r.routed_read_back,
                "owners_sampled": r.routed,
                "readout_covered": r.readout.get("covered"),
                "readout_actions": r.readout.get("actions"),
                "seconds": round(r.seconds, 1),
            }
            for r in results
        },
    }


def serve_sandbox(
    settings: Settings, leads: int, seed: int, host: str, port: int, console: Console
) -> None:
    """`leadlift sandbox serve`: a seeded sandbox plus ready-to-paste connect commands."""
    with console.status(f"generating {leads:,} leads"):
        world = generate_world(n_leads=leads, seed=seed, now=_today())
        config = SandboxConfig()
        sandbox = SandboxCRM.from_seed(world.seed, config=config)
    sf = sandbox.issue_tokens("salesforce")
    hs = sandbox.issue_tokens("hubspot")
    base = f"https://{host}:{port}"

    def announce(ca_file: str) -> None:
        lines = [
            f"sandbox CRM on {base} (trust its certificate: {ca_file})",
            "",
            "# the sandbox's OAuth apps, so leadlift can refresh tokens:",
            f"export LEADLIFT_SALESFORCE_CLIENT_ID={config.salesforce_client_id} "
            f"LEADLIFT_SALESFORCE_CLIENT_SECRET={config.salesforce_client_secret} "
            f"LEADLIFT_HUBSPOT_CLIENT_ID={config.hubspot_client_id} "
            f"LEADLIFT_HUBSPOT_CLIENT_SECRET={config.hubspot_client_secret}",
            f"leadlift connect salesforce --instance-url {base} --login-url {base} "
            f"--ca-file {ca_file} --access-token {sf['access_token']} "
            f"--refresh-token {sf['refresh_token']}",
            f"leadlift connect hubspot --api-base {base} --ca-file {ca_file} "
            f"--requests-per-10s 0 --access-token {hs['access_token']} "
            f"--refresh-token {hs['refresh_token']}",
            "",
            "Ctrl-C stops the sandbox.",
        ]
        for line in lines:
            console.print(line, soft_wrap=True, highlight=False, markup=False)

    serve(
        sandbox, host, port, cert_dir=(settings.home / "sandbox-tls").resolve(), on_ready=announce
    )
