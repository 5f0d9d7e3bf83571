"""Putting leadlift's fields where reps look: page layouts and a list view (Metadata API).

Both are optional and reversible: a layout gets one extra section, labelled
``leadlift``, holding the fields as read-only; the list view is a new one.
Removal takes out exactly that section and that view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simple_salesforce.exceptions import SalesforceError

from connectors.base import Component, InstallReport
from connectors.errors import PermanentError, TransientError
from connectors.salesforce.client import SalesforceClient, translate

SECTION_LABEL = "leadlift"
LIST_VIEW = "Leadlift_Top_Leads"
LIST_VIEW_COLUMNS = ("FULL_NAME", "LEAD.COMPANY", "LEAD.STATUS", "CORE.USERS.ALIAS")


def _items(section: Any) -> list[str]:
    return [
        item.field
        for column in (getattr(section, "layoutColumns", None) or [])
        for item in (getattr(column, "layoutItems", None) or [])
        if getattr(item, "field", None)
    ]


class Views:
    def __init__(self, client: SalesforceClient) -> None:
        self.client = client

    def _api(self):
        """sf.mdapi, with zeep sending through leadlift's session (CA bundle, counting, budget)
        instead of its own, which lets REQUESTS_CA_BUNDLE override the configured CA."""
        md = self.client.sf.mdapi
        transport = md._client.transport
        if transport.session is not self.client.session:
            transport.session = self.client.session
        return md

    def _mdapi(self, fn):
        try:
            return fn(self._api())
        except SalesforceError as exc:
            raise translate(exc) from None
        except Exception as exc:  # zeep faults and Metadata API error results
            text = str(exc)
            if "INVALID_SESSION_ID" in text:
                self.client.refresh()
                return fn(self._api())
            if "REQUEST_LIMIT_EXCEEDED" in text:
                raise TransientError(f"Salesforce Metadata API: {text}"[:500], 3600.0) from None
            raise PermanentError(f"Salesforce Metadata API: {text}"[:500]) from None

    def _read_layout(self, name: str) -> Any:
        layout = self._mdapi(lambda md: md.Layout.read(name))
        if layout is None or not getattr(layout, "fullName", None):
            raise PermanentError(f"no page layout named {name!r}")
        return layout

    def add_to_layouts(
        self, layouts: Sequence[str], fields: Sequence[str], dry_run: bool
    ) -> InstallReport:
        """Add a read-only ``leadlift`` section with ``fields`` (API names) to each layout."""
        components: list[Component] = []
        existing: list[str] = []
        for name in layouts:
            layout = self._read_layout(name)
            obj = name.split("-", 1)[0]
            present = {f for s in (layout.layoutSections or []) for f in _items(s)}
            wanted = [f for f in fields if f not in present]
            if not wanted:
                existing.append(name)
                continue
            if not dry_run:
                md = self._api()
                column = md.LayoutColumn(
                    layoutItems=[md.LayoutItem(field=f, behavior="Readonly") for f in wanted]
                )
                section = md.LayoutSection(
                    label=SECTION_LABEL, style="OneColumn", detailHeading=True,
                    editHeading=True, customLabel=True, layoutColumns=[column],
                )  # fmt: skip
                layout.layoutSections.append(section)
                self._mdapi(lambda md, layout=layout: md.Layout.update(layout))
            components.append(
                Component("layout_section", name, None, {"object": obj, "fields": wanted})
            )
        return InstallReport(
            created=tuple(c.name for c in components), existing=tuple(existing),
            dry_run=dry_run, components=tuple(components),
        )  # fmt: skip

    def create_list_view(self, score_field: str, minimum: int, dry_run: bool) -> InstallReport:
        """A Lead list view of leads scoring at least ``minimum``, best first."""
        full_name = f"Lead.{LIST_VIEW}"
        current = self._mdapi(lambda md: md.ListView.read(full_name))
        if current is not None and getattr(current, "fullName", None):
            return InstallReport(existing=(full_name,), dry_run=dry_run)
        if not dry_run:
            md = self._api()
            view = md.ListView(
                fullName=full_name,
                label="leadlift: top leads",
                filterScope="Everything",
                columns=[*LIST_VIEW_COLUMNS, score_field],
                filters=[
                    md.ListViewFilter(field=score_field, operation="greaterOrEqual",
                                      value=str(minimum))
                ],
            )  # fmt: skip
            self._mdapi(lambda md: md.ListView.create(view))
        component = Component("list_view", full_name, full_name)
        return InstallReport(created=(full_name,), dry_run=dry_run, components=(component,))

    def remove(self, components: Sequence[Component], dry_run: bool) -> list[str]:
        removed: list[str] = []
        for component in components:
            if component.kind == "layout_section":
                if not dry_run:
                    self._remove_section(component.name, set(component.details.get("fields", ())))
                removed.append(f"layout_section {component.name}")
            elif component.kind == "list_view":
                if not dry_run:
                    self._mdapi(lambda md, n=component.name: md.ListView.delete(n))
                removed.append(f"list_view {component.name}")
        return removed

    def _remove_section(self, name: str, fields: set[str]) -> None:
        layout = self._read_layout(name)
        kept = [
            s
            for s in (layout.layoutSections or [])
            if not (getattr(s, "label", None) == SECTION_LABEL and set(_items(s)) <= fields)
        ]
        if len(kept) != len(layout.layoutSections or []):
            layout.layoutSections = kept
            self._mdapi(lambda md: md.Layout.update(layout))
