"""With no broker configured the Celery tasks run in-process and call the same pipeline."""

from __future__ import annotations

from sqlalchemy import select

from integration.store.models import PipelineRun

from .conftest import make_rig


def test_cycle_task_runs_in_process_without_a_broker(
    world, open_leads, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("LEADLIFT_HOME", str(tmp_path / "home"))
    from tasks.app import make_celery
    from tasks.pipeline import run_all_task, run_cycle_task

    assert make_celery().conf.task_always_eager
    with make_rig(world, tmp_path) as rig:
        rig.connect("salesforce")
        summary = run_cycle_task.delay("salesforce").get()
        assert summary == {
            "connection": "salesforce",
            "trained": True,
            "scored": open_leads,
            "written": open_leads,
            "api_calls": summary["api_calls"],
        }
        assert run_all_task.delay().get() == ["salesforce"]
        with rig.store.session() as session:
            cycles = session.scalars(select(PipelineRun).where(PipelineRun.step == "cycle")).all()
    assert [c.status for c in cycles] == ["ok", "ok"]
