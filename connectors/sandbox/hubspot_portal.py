"""The HubSpot half of the sandbox: a portal's objects, search, batch writes and properties."""

from __future__ import annotations

import functools
import math
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .config import SandboxConfig
from .hubspot_render import Edges, render_hubspot
from .hubspot_schema import (
    ASSOCIATION_TYPES,
    DEFAULT_GROUPS,
    DEFAULT_PROPERTIES,
    MODIFIED_PROPERTY,
    OBJECT_TYPES,
    SINGULAR,
    TYPE_ALIASES,
    TYPE_FIELD_TYPES,
    PropertyDef,
)
from .ids import HUBSPOT_ID_BASES
from .seed import CrmSeed
from .seedutil import KeyIndex
from .table import Table
from .timefmt import hs_datetime, hs_datetimes, parse_hs_time, sf_dates, to_datetime64

RecordFault = Callable[[str], tuple[str, str] | None]
SEARCHABLE = {
    "contacts": ("email", "firstname", "lastname", "company", "phone"),
    "companies": ("name", "domain"),
    "deals": ("dealname",),
    "calls": ("hs_call_title",),
    "emails": ("hs_email_subject",),
    "tasks": ("hs_task_subject",),
    "meetings": ("hs_meeting_title",),
}
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)


class HubSpotApiError(Exception):
    """An error HubSpot reports as ``{"status": "error", "message", "category", ...}``."""

    def __init__(self, status: int, category: str, message: str, **extra: Any):
        super().__init__(f"{category}: {message}")
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        return {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
            **self.extra,
        }


def validation_error(message: str, errors: list[dict] | None = None) -> HubSpotApiError:
    """Return a 400 VALIDATION_ERROR."""
    extra = {"errors": errors} if errors else {}
    return HubSpotApiError(400, "VALIDATION_ERROR", message, **extra)


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


def _number_text(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


class HubSpotPortal:
    """A HubSpot portal rendered from a seed.

    Args:
        seed: the neutral CRM data.
        config: sandbox configuration (clock, search cap).
    """

    def __init__(self, seed: CrmSeed, config: SandboxConfig):
        self.config = config
        self.lock = threading.RLock()
        rendered = render_hubspot(seed)
        self.tables: dict[str, Table] = rendered.tables
        self.props: dict[str, dict[str, PropertyDef]] = {
            t: {p.name: p for p in defs} for t, defs in rendered.properties.items()
        }
        self.owners = rendered.owners
        self.sources = rendered.sources
        self.edges: dict[tuple[str, str], Edges] = rendered.edges
        self.status_history = rendered.status_history
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            t: {g: {"name": g, "label": label, "displayOrder": -1, "archived": False}}
            for t, (g, label) in DEFAULT_GROUPS.items()
        }
        self._history: dict[tuple[str, int, str], list[tuple[str | None, np.datetime64, str]]] = {}
        integration = rendered.integration_owner
        self.integration_user_id = (
            int(self.owners["userId"].iloc[integration]) if integration is not None else 0
        )
        self.integration_user_email = (
            self.owners["email"].iloc[integration] if integration is not None else None
        )

    # ---- lookups -----------------------------------------------------------------------------
    def now64(self) -> np.datetime64:
        """Return the current sandbox time (ms precision) as ``datetime64[ns]``."""
        return np.datetime64(to_datetime64(self.config.now()), "ms").astype("datetime64[ns]")

    def object_type(self, name: str) -> str:
        """Return the canonical plural type name for ``name`` (plural, singular or 0-N id).

        Raises:
            HubSpotApiError: 400 for unknown types.
        """
        canonical = TYPE_ALIASES.get(str(name).lower())
        if canonical is None:
            raise HubSpotApiError(
                400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}"
            )
        return canonical

    def position(self, object_type: str, object_id: Any) -> int | None:
        """Return the row position of an id (archived rows included)."""
        try:
            pos = int(str(object_id)) - HUBSPOT_ID_BASES[object_type]
        except ValueError:
            return None
        return pos if 0 <= pos < self.tables[object_type].n else None

    def object_id(self, object_type: str, pos: int) -> str:
        return str(HUBSPOT_ID_BASES[object_type] + int(pos))

    @_locked
    def id_for(self, object_type: str, key: int) -> str:
        """Return the HubSpot id rendered from a seed key.

        ``contacts`` take a lead_key, ``companies`` an account_key, ``deals`` an
        opportunity_key, ``meetings`` a meeting_key and ``calls``/``emails``/``tasks``
        a touch_key. Raises KeyError when there is no such object.
        """
        object_type = self.object_type(object_type)
        source = self.sources[object_type]
        if isinstance(source, tuple):
            index, rows = source
            touch_pos = index.position(key)
            hits = np.flatnonzero(rows == touch_pos) if touch_pos is not None else []
            if not len(hits):
                raise KeyError(f"no {object_type} for touch {key}")
            return self.object_id(object_type, int(hits[0]))
        assert isinstance(source, KeyIndex)
        pos = source.position(key)
        if pos is None:
            raise KeyError(f"no {object_type} for key {key}")
        return self.object_id(object_type, pos)

    @_locked
    def get(self, object_type: str, object_id: str) -> dict[str, str | None]:
        """Return every property of an object as HubSpot renders it (strings)."""
        object_type = self.object_type(object_type)
        pos = self.position(object_type, object_id)
        if pos is None:
            raise KeyError(f"no {object_type} {object_id}")
        return self.render(object_type, np.array([pos]), list(self.props[object_type]))[0][
            "properties"
        ]

    @_locked
    def frame(self, object_type: str) -> pd.DataFrame:
        """Return a copy of an object type's table as a DataFrame."""
        return self.tables[self.object_type(object_type)].to_frame()

    # ---- rendering ---------------------------------------------------------------------------
    def _values(self, object_type: str, prop: PropertyDef, positions: np.ndarray) -> list:
        if prop.name == "hs_object_id":
            base = HUBSPOT_ID_BASES[object_type]
            return [str(base + int(p)) for p in positions.tolist()]
        values = self.tables[object_type].col(prop.storage)[positions]
        if prop.kind == "num":
            return [None if v != v else _number_text(v) for v in values.tolist()]
        if prop.kind == "datetime":
            return sf_dates(values) if prop.type == "date" else hs_datetimes(values)
        return values.tolist()

    def _prop_names(self, object_type: str, requested: list[str] | None) -> list[str]:
        defs = self.props[object_type]
        if not requested:
            return list(DEFAULT_PROPERTIES[object_type])
        names = [n for n in dict.fromkeys(requested) if n in defs]
        always = [
            "hs_object_id",
            "createdate" if object_type in ("contacts", "companies", "deals") else "hs_createdate",
            MODIFIED_PROPERTY[object_type],
        ]
        return list(dict.fromkeys(names + always))

    def render(
        self,
        object_type: str,
        positions: np.ndarray,
        prop_names: list[str],
        with_history: list[str] | None = None,
        associations: list[str] | None = None,
        explicit: bool = True,
    ) -> list[dict[str, Any]]:
        """Render objects as v3 ``SimplePublicObject`` JSON."""
        table = self.tables[object_type]
        defs = self.props[object_type]
        names = [n for n in prop_names if n in defs] if explicit else prop_names
        columns = [self._values(object_type, defs[n], positions) for n in names]
        created = hs_datetimes(table.col("createdate")[positions])
        updated = hs_datetimes(table.col(MODIFIED_PROPERTY[object_type])[positions])
        archived = table.col("_archived")[positions].tolist()
        archived_at = hs_datetimes(table.col("_archived_at")[positions])
        base = HUBSPOT_ID_BASES[object_type]
        out = []
        for i, pos in enumerate(positions.tolist()):
            obj: dict[str, Any] = {
                "id": str(base + pos),
                "properties": {n: col[i] for n, col in zip(names, columns, strict=True)},
                "createdAt": created[i],
                "updatedAt": updated[i],
                "archived": archived[i],
            }
            if archived[i]:
                obj["archivedAt"] = archived_at[i]
            if with_history:
                obj["propertiesWithHistory"] = {
                    n: self._versions(object_type, pos, n) for n in with_history if n in defs
                }
            if associations:
                assoc = self._inline_associations(object_type, pos, associations)
                if assoc:
                    obj["associations"] = assoc
            out.append(obj)
        return out

    def _versions(self, object_type: str, pos: int, name: str) -> list[dict[str, Any]]:
        versions = [
            {
                "value": v if v is not None else "",
                "timestamp": hs_datetime(t),
                "sourceType": source,
                "sourceId": "sandbox-api" if source == "INTEGRATION" else None,
            }
            for v, t, source in reversed(self._history.get((object_type, pos, name), []))
        ]
        versions = [{k: v for k, v in d.items() if v is not None} for d in versions]
        if object_type == "contacts" and name == "hs_lead_status" and self.status_history:
            values, times = self.status_history.versions(pos)
            seeded = [
                {
                    "value": v,
                    "timestamp": hs_datetime(t),
                    "sourceType": "CRM_UI",
                    "sourceId": "userId:" + str(self.integration_user_id),
                }
                for v, t in zip(values.tolist(), times, strict=True)
                if v is not None
            ]
            if seeded or versions:
                return versions + seeded
        if (object_type, pos, name) not in self._history:
            current = self._values(object_type, self.props[object_type][name], np.array([pos]))[0]
            if current is None:
                return []
            created = self.tables[object_type].col("createdate")[pos]
            return [{"value": current, "timestamp": hs_datetime(created), "sourceType": "CRM_UI"}]
        return versions

    def _inline_associations(self, object_type: str, pos: int, wanted: list[str]) -> dict:
        out: dict[str, Any] = {}
        for name in wanted:
            to_type = TYPE_ALIASES.get(name.lower())
            edges = self.edges.get((object_type, to_type)) if to_type else None
            if edges is None or to_type is None:
                continue
            targets = edges.targets(pos)
            if not len(targets):
                continue
            labels = ASSOCIATION_TYPES[(object_type, to_type)]
            stem = f"{SINGULAR[object_type]}_to_{SINGULAR[to_type]}"
            results = []
            for target in targets.tolist():
                target_id = self.object_id(to_type, target)
                for _type_id, label in labels:
                    kind = stem if label or len(labels) == 1 else f"{stem}_unlabeled"
                    results.append({"id": target_id, "type": kind})
            out[name] = {"results": results}
        return out

    # ---- reads -------------------------------------------------------------------------------
    @_locked
    def list_page(
        self,
        object_type: str,
        *,
        limit: int = 10,
        after: str | None = None,
        properties: list[str] | None = None,
        properties_with_history: list[str] | None = None,
        associations: list[str] | None = None,
        archived: bool = False,
        base_url: str = "",
    ) -> dict[str, Any]:
        """Return one page of ``GET /crm/v3/objects/{type}`` (ordered by id)."""
        object_type = self.object_type(object_type)
        max_limit = 50 if properties_with_history else 100
        if limit < 1 or limit > max_limit:
            if limit > max_limit:
                limit = max_limit
            else:
                raise validation_error(f"limit must be between 1 and {max_limit}")
        start = 0
        if after:
            start = self.position(object_type, after)
            if start is None:
                start = self.tables[object_type].n if str(after).isdigit() else 0
        flags = self.tables[object_type].col("_archived")
        chunk = np.flatnonzero(flags[start:] == archived)[: limit + 1] + start
        page, rest = chunk[:limit], chunk[limit:]
        result: dict[str, Any] = {
            "results": self.render(
                object_type,
                page,
                self._prop_names(object_type, properties),
                properties_with_history,
                associations,
            ),
        }
        if len(rest):
            nxt = self.object_id(object_type, int(rest[0]))
            result["paging"] = {
                "next": {
                    "after": nxt,
                    "link": f"{base_url}/crm/v3/objects/{object_type}?after={nxt}",
                }
            }
        return result

    @_locked
    def read_one(
        self,
        object_type: str,
        object_id: str,
        *,
        properties: list[str] | None = None,
        properties_with_history: list[str] | None = None,
        associations: list[str] | None = None,
        archived: bool = False,
        id_property: str | None = None,
    ) -> dict[str, Any]:
        """Return ``GET /crm/v3/objects/{type}/{id}``.

        Raises:
            HubSpotApiError: 404 OBJECT_NOT_FOUND.
        """
        object_type = self.object_type(object_type)
        pos = self._find(object_type, object_id, id_property)
        if pos is None or bool(self.tables[object_type].col("_archived")[pos]) != archived:
            raise HubSpotApiError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [str(object_id)]},
            )
        return self.render(
            object_type,
            np.array([pos]),
            self._prop_names(object_type, properties),
            properties_with_history,
            associations,
        )[0]

    def _find(self, object_type: str, value: Any, id_property: str | None) -> int | None:
        if not id_property or id_property == "hs_object_id":
            return self.position(object_type, value)
        prop = self.props[object_type].get(id_property)
        if prop is None or prop.kind != "str":
            raise validation_error(f"Property {id_property} is not a unique identifier")
        hits = np.flatnonzero(self.tables[object_type].lower(prop.storage) == str(value).lower())
        return int(hits[0]) if len(hits) else None

    @_locked
    def batch_read(self, object_type: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /crm/v3/objects/{type}/batch/read`` → (status, body)."""
        object_type = self.object_type(object_type)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise validation_error("Invalid input JSON: inputs is required")
        if len(inputs) > 100:
            raise validation_error(f"Too many inputs: {len(inputs)} > 100")
        started = hs_datetime(self.now64())
        id_property = body.get("idProperty")
        found, missing = [], []
        archived = bool(body.get("archived", False))
        for item in inputs:
            value = item.get("id") if isinstance(item, dict) else None
            pos = self._find(object_type, value, id_property)
            if pos is None or bool(self.tables[object_type].col("_archived")[pos]) != archived:
                missing.append(str(value))
            else:
                found.append(pos)
        results = self.render(
            object_type,
            np.array(found, dtype=np.int64),
            self._prop_names(object_type, body.get("properties")),
            body.get("propertiesWithHistory"),
        )
        return self._batch_response(object_type, results, missing, [], started, "get")

    def _batch_response(
        self,
        object_type: str,
        results: list,
        missing: list[str],
        faults: list[dict],
        started: str,
        verb: str,
    ) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": hs_datetime(self.now64()),
        }
        errors = list(faults)
        if missing:
            errors.insert(
                0,
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not {verb} some {SINGULAR[object_type].upper()} objects, "
                    "they may be deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                },
            )
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return 207, body
        return 200, body

    # ---- writes ------------------------------------------------------------------------------
    def _coerce(self, object_type: str, name: str, value: Any) -> tuple[Any, dict | None]:
        prop = self.props[object_type].get(name)

        def err(code: str, message: str) -> tuple[Any, dict]:
            return None, {"message": message, "code": code, "context": {"propertyName": [name]}}

        if prop is None:
            return err("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if prop.read_only or prop.calculated:
            return err(
                "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
            )
        if value is None or value == "":
            return None, None
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = _number_text(float(value))
        elif isinstance(value, str):
            text = value
        else:
            return err("INVALID_VALUE", f"{value!r} is not a valid value for {name}")
        if prop.type == "number":
            try:
                number = float(text)
            except ValueError:
                return err("INVALID_DECIMAL", f"{text} was not a valid number.")
            if not math.isfinite(number):
                return err("INVALID_DECIMAL", f"{text} was not a valid number.")
            return number, None
        if prop.type in ("datetime", "date"):
            parsed = parse_hs_time(text)
            if parsed is None:
                return err("INVALID_DATE", f"{text} was not a valid date/time.")
            if prop.type == "date" and parsed != parsed.astype("datetime64[D]"):
                return err("INVALID_DATE", f"{text} is not a valid date at midnight UTC.")
            return parsed.astype("datetime64[ms]").astype("datetime64[ns]"), None
        if prop.type == "bool":
            if text.lower() not in ("true", "false"):
                return err("INVALID_BOOLEAN", f"{text} was not a valid boolean.")
            return text.lower(), None
        if prop.name == "hubspot_owner_id":
            if text not in set(self.owners["id"]):
                return err("INVALID_OWNER_ID", f"{text} is not a valid owner id")
            return text, None
        if prop.type == "enumeration":
            allowed = {o["value"] for o in prop.options}
            parts = text.split(";") if prop.field_type == "checkbox" else [text]
            bad = [p for p in parts if p not in allowed]
            if bad:
                return err(
                    "INVALID_OPTION",
                    f"{bad[0]} was not one of the allowed options: [{', '.join(sorted(allowed))}]",
                )
            return text, None
        if len(text) > 65536:
            return err("INVALID_LENGTH", f"value for {name} is too long")
        return text, None

    def _apply(
        self, object_type: str, pos: int, values: dict[str, Any], now: np.datetime64
    ) -> None:
        table = self.tables[object_type]
        for name, value in values.items():
            prop = self.props[object_type][name]
            key = (object_type, pos, name)
            if key not in self._history and not (
                object_type == "contacts" and name == "hs_lead_status"
            ):
                current = table.get(pos, prop.storage)
                if current is not None:
                    self._history[key] = [
                        (
                            self._values(object_type, prop, np.array([pos]))[0],
                            table.col("createdate")[pos],
                            "CRM_UI",
                        )
                    ]
            table.set(pos, prop.storage, value)
            shown = self._values(object_type, prop, np.array([pos]))[0]
            self._history.setdefault(key, []).append((shown, now, "INTEGRATION"))
        modified = MODIFIED_PROPERTY[object_type]
        table.set(pos, modified, max(now, table.col(modified)[pos]))

    def _validate_inputs(self, object_type: str, inputs: list[Any]) -> list[dict[str, Any]]:
        coerced: list[dict[str, Any]] = []
        errors: list[dict] = []
        for item in inputs:
            props = item.get("properties") if isinstance(item, dict) else None
            if not isinstance(props, dict):
                raise validation_error("Invalid input JSON: each input needs id and properties")
            values = {}
            for name, value in props.items():
                out, error = self._coerce(object_type, name, value)
                if error:
                    errors.append(error)
                else:
                    values[name] = out
            coerced.append(values)
        if errors:
            summary = ", ".join(e["message"] for e in errors[:5])
            raise validation_error(f"Property values were not valid: {summary}", errors)
        return coerced

    @_locked
    def batch_update(
        self, object_type: str, body: dict[str, Any], record_fault: RecordFault | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``POST /crm/v3/objects/{type}/batch/update`` → (status, body).

        Invalid properties or values fail the whole batch (400); unknown ids and injected
        record faults are reported per id (207) while the rest are applied.
        """
        object_type = self.object_type(object_type)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise validation_error("Invalid input JSON: inputs is required")
        if len(inputs) > 100:
            raise validation_error(f"Too many inputs: {len(inputs)} > 100")
        started = hs_datetime(self.now64())
        ids = [str(i.get("id")) if isinstance(i, dict) else "" for i in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise validation_error(f"Duplicate IDs found in batch input: {dupes}")
        coerced = self._validate_inputs(object_type, inputs)
        now = self.now64()
        results, missing, faults = [], [], []
        for item, object_id, values in zip(inputs, ids, coerced, strict=True):
            pos = self._find(object_type, object_id, item.get("idProperty"))
            if pos is None or self.tables[object_type].col("_archived")[pos]:
                missing.append(object_id)
                continue
            real_id = self.object_id(object_type, pos)
            fault = record_fault(real_id) if record_fault else None
            if fault:
                faults.append(
                    {
                        "status": "error",
                        "category": fault[0],
                        "message": fault[1],
                        "context": {"ids": [real_id]},
                    }
                )
                continue
            self._apply(object_type, pos, values, now)
            names = self._prop_names(object_type, list(values))
            results.append(self.render(object_type, np.array([pos]), names)[0])
        return self._batch_response(object_type, results, missing, faults, started, "update")

    @_locked
    def update_one(
        self,
        object_type: str,
        object_id: str,
        properties: dict[str, Any],
        id_property: str | None = None,
        record_fault: RecordFault | None = None,
    ) -> dict[str, Any]:
        """``PATCH /crm/v3/objects/{type}/{id}``; also the Python write API."""
        object_type = self.object_type(object_type)
        pos = self._find(object_type, object_id, id_property)
        if pos is None or self.tables[object_type].col("_archived")[pos]:
            raise HubSpotApiError(404, "OBJECT_NOT_FOUND", "resource not found")
        values = self._validate_inputs(object_type, [{"properties": properties}])[0]
        fault = record_fault(self.object_id(object_type, pos)) if record_fault else None
        if fault:
            raise HubSpotApiError(409 if fault[0] == "CONFLICT" else 400, fault[0], fault[1])
        self._apply(object_type, pos, values, self.now64())
        return self.render(
            object_type, np.array([pos]), self._prop_names(object_type, list(values))
        )[0]

    @_locked
    def archive(self, object_type: str, object_id: str) -> None:
        """Archive (soft-delete) an object; HubSpot does not bump its modified date."""
        object_type = self.object_type(object_type)
        pos = self.position(object_type, object_id)
        if pos is None:
            return  # HubSpot answers 204 for unknown ids too
        table = self.tables[object_type]
        if not table.col("_archived")[pos]:
            table.set(pos, "_archived", True)
            table.set(pos, "_archived_at", self.now64())

    # ---- search ------------------------------------------------------------------------------
    @_locked
    def search(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/objects/{type}/search``."""
        object_type = self.object_type(object_type)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON")
        groups = body.get("filterGroups") or []
        if body.get("filters"):
            groups = [*groups, {"filters": body["filters"]}]
        if len(groups) > 5:
            raise validation_error(
                "There were too many filter groups: 6 > 5",
                [{"message": "Too many filter groups", "code": "TOO_MANY_FILTER_GROUPS"}],
            )
        for group in groups:
            if len(group.get("filters") or []) > 6:
                raise validation_error(
                    "There were too many filters in a filter group: 7 > 6",
                    [{"message": "Too many filters", "code": "TOO_MANY_FILTERS"}],
                )
        try:
            limit = int(body.get("limit") or 10)
            after = int(body.get("after") or 0)
        except (TypeError, ValueError) as exc:
            raise validation_error("limit and after must be integers") from exc
        if limit < 1 or limit > 200:
            raise validation_error(f"limit must be between 1 and 200 (got {limit})")
        if after < 0:
            raise validation_error("after must be a non-negative integer")
        if after + limit > self.config.hubspot_search_cap:
            raise validation_error(
                f"There was a problem with the request. Paging beyond "
                f"{self.config.hubspot_search_cap} results is not supported (after={after}).",
            )
        table = self.tables[object_type]
        mask = ~table.col("_archived")
        if groups:
            any_group = np.zeros(table.n, dtype=bool)
            for group in groups:
                group_mask = np.ones(table.n, dtype=bool)
                for flt in group.get("filters") or []:
                    group_mask &= self._filter_mask(object_type, flt)
                any_group |= group_mask
            mask &= any_group
        query = body.get("query")
        if query:
            needle = str(query).lower()
            hit = np.zeros(table.n, dtype=bool)
            for name in SEARCHABLE[object_type]:
                col = table.lower(self.props[object_type][name].storage)
                hit |= np.array([isinstance(v, str) and needle in v for v in col.tolist()])
            mask &= hit
        positions = np.flatnonzero(mask)
        positions = self._sort(object_type, positions, body.get("sorts") or [])
        total = len(positions)
        page = positions[after : after + limit]
        props = body.get("properties")
        result: dict[str, Any] = {
            "total": int(total),
            "results": self.render(object_type, page, self._prop_names(object_type, props)),
        }
        if after + limit < total:
            result["paging"] = {"next": {"after": str(after + limit)}}
        return result

    def _column_for(self, object_type: str, name: str) -> tuple[PropertyDef, np.ndarray]:
        prop = self.props[object_type].get(str(name))
        if prop is None:
            raise validation_error(
                f"There was a problem with the request. Unknown property '{name}'.",
                [{"message": f"Property {name} does not exist", "code": "PROPERTY_DOESNT_EXIST"}],
            )
        if prop.name == "hs_object_id":
            base = HUBSPOT_ID_BASES[object_type]
            return prop, (base + np.arange(self.tables[object_type].n)).astype(np.float64)
        if prop.kind == "str":
            return prop, self.tables[object_type].lower(prop.storage)
        return prop, self.tables[object_type].col(prop.storage)

    def _filter_value(self, prop: PropertyDef, raw: Any) -> Any:
        if raw is None:
            raise validation_error(f"Filter on {prop.name} needs a value")
        if prop.kind == "num" or prop.name == "hs_object_id":
            try:
                return float(raw)
            except (TypeError, ValueError) as exc:
                raise validation_error(f"{raw} is not a valid number for {prop.name}") from exc
        if prop.kind == "datetime":
            parsed = parse_hs_time(str(raw))
            if parsed is None:
                raise validation_error(f"{raw} is not a valid date for {prop.name}")
            return parsed
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return str(raw).lower()

    def _filter_mask(self, object_type: str, flt: dict[str, Any]) -> np.ndarray:
        op = str(flt.get("operator", "")).upper()
        if op not in OPERATORS:
            raise validation_error(f"Unknown operator: {op}")
        prop, col = self._column_for(object_type, flt.get("propertyName", ""))

        def has_value() -> np.ndarray:
            present = np.asarray(~pd.isna(col), dtype=bool)
            if prop.kind == "str":
                present &= np.asarray(col != "", dtype=bool)
            return present

        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            present = has_value()
        if op == "HAS_PROPERTY":
            return present
        if op == "NOT_HAS_PROPERTY":
            return ~present
        if op in ("IN", "NOT_IN"):
            values = [self._filter_value(prop, v) for v in flt.get("values") or []]
            hit = np.asarray(pd.Series(col).isin(values), dtype=bool)
            return hit if op == "IN" else ~hit
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(flt.get("value", "")).lower()
            pattern = re.compile(".*".join(re.escape(p) for p in token.split("*")))
            hit = np.array(
                [isinstance(v, str) and pattern.search(v) is not None for v in col.tolist()],
                dtype=bool,
            )
            return hit if op == "CONTAINS_TOKEN" else ~hit
        value = self._filter_value(prop, flt.get("value"))
        if prop.kind == "str":
            if op == "EQ":
                return np.asarray(col == value, dtype=bool)
            if op == "NEQ":
                return np.asarray(col != value, dtype=bool)
            sub = np.zeros(len(col), dtype=bool)
            idx = np.flatnonzero(has_value())
            vals = col[idx].astype(str)
            high = self._filter_value(prop, flt.get("highValue")) if op == "BETWEEN" else None
            sub[idx] = _compare(vals, op, value, high)
            return sub
        high = self._filter_value(prop, flt.get("highValue")) if op == "BETWEEN" else None
        return np.asarray(_compare(col, op, value, high), dtype=bool)

    def _sort(self, object_type: str, positions: np.ndarray, sorts: list[Any]) -> np.ndarray:
        if not sorts or not len(positions):
            return positions
        keys: list[np.ndarray] = [positions]
        for spec in reversed(sorts):
            if isinstance(spec, str):
                name, desc = spec.lstrip("-"), spec.startswith("-")
            else:
                name = spec.get("propertyName", "")
                desc = str(spec.get("direction", "ASCENDING")).upper().startswith("DESC")
            prop, col = self._column_for(object_type, name)
            raw = col[positions]
            if prop.kind == "str":
                codes, _ = pd.factorize(raw, sort=True, use_na_sentinel=True)
                nulls = codes < 0
                values = codes.astype(np.int64)
            elif prop.kind == "datetime" and prop.name != "hs_object_id":
                nulls = np.isnat(raw)
                values = np.where(nulls, 0, raw.view(np.int64))
            else:
                nulls = np.isnan(raw)
                values = np.where(nulls, 0.0, raw)
            keys.append(-values if desc else values)
            keys.append(nulls.astype(np.int8))  # missing values sort last either way
        return positions[np.lexsort(keys)]

    # ---- properties --------------------------------------------------------------------------
    @_locked
    def list_properties(self, object_type: str) -> dict[str, Any]:
        """``GET /crm/v3/properties/{type}``."""
        object_type = self.object_type(object_type)
        return {"results": [p.definition() for p in self.props[object_type].values()]}

    @_locked
    def get_property(self, object_type: str, name: str) -> dict[str, Any]:
        """``GET /crm/v3/properties/{type}/{name}``."""
        object_type = self.object_type(object_type)
        prop = self.props[object_type].get(name)
        if prop is None:
            raise HubSpotApiError(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to find property {name} on object type {object_type}",
            )
        return prop.definition()

    @_locked
    def create_property(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/properties/{type}``; the property becomes readable and writable."""
        object_type = self.object_type(object_type)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON")
        name = str(body.get("name") or "")
        type_ = str(body.get("type") or "")
        field_type = str(body.get("fieldType") or "")
        group = str(body.get("groupName") or "")
        errors = []
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or len(name) > 100:
            errors.append(
                f"Property name '{name}' must start with a lowercase letter and contain "
                "only lowercase letters, digits and underscores"
            )
        if not body.get("label"):
            errors.append("label is required")
        if type_ not in TYPE_FIELD_TYPES:
            errors.append(f"type must be one of {sorted(TYPE_FIELD_TYPES)}")
        elif field_type not in TYPE_FIELD_TYPES[type_]:
            errors.append(f"fieldType '{field_type}' is not valid for type '{type_}'")
        if group not in self.groups[object_type]:
            errors.append(f"Property group '{group}' does not exist")
        options = body.get("options") or []
        if type_ == "bool" and not options:
            options = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
        if type_ == "enumeration" and not options:
            errors.append("Enumeration properties need options")
        if errors:
            raise validation_error(
                "; ".join(errors), [{"message": e, "code": "INVALID_PROPERTY"} for e in errors]
            )
        if name in self.props[object_type]:
            raise HubSpotApiError(
                409,
                "OBJECT_ALREADY_EXISTS",
                f"Property named '{name}' already exists.",
                context={"name": [name]},
            )
        prop = PropertyDef(
            name,
            type_,
            field_type,
            label=str(body["label"]),
            group=group,
            options=[
                {
                    "label": str(o.get("label", o.get("value"))),
                    "value": str(o.get("value")),
                    "displayOrder": int(o.get("displayOrder", i)),
                    "hidden": bool(o.get("hidden", False)),
                }
                for i, o in enumerate(options)
            ],
            hubspot_defined=False,
            description=str(body.get("description") or ""),
            has_unique_value=bool(body.get("hasUniqueValue", False)),
            hidden=bool(body.get("hidden", False)),
            created_at=hs_datetime(self.now64()),
        )
        self.props[object_type][name] = prop
        self.tables[object_type].add_column(name, prop.kind)
        return prop.definition()

    @_locked
    def delete_property(self, object_type: str, name: str) -> None:
        """``DELETE /crm/v3/properties/{type}/{name}`` (custom properties only)."""
        object_type = self.object_type(object_type)
        prop = self.props[object_type].get(name)
        if prop is None:
            raise HubSpotApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        if prop.hubspot_defined:
            raise HubSpotApiError(
                400,
                "VALIDATION_ERROR",
                f"Property {name} is HubSpot-defined and cannot be archived",
            )
        del self.props[object_type][name]
        self.tables[object_type].drop_column(prop.storage)

    @_locked
    def list_groups(self, object_type: str) -> dict[str, Any]:
        """``GET /crm/v3/properties/{type}/groups``."""
        return {"results": list(self.groups[self.object_type(object_type)].values())}

    @_locked
    def create_group(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/properties/{type}/groups``."""
        object_type = self.object_type(object_type)
        name = str((body or {}).get("name") or "")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not body.get("label"):
            raise validation_error("Group needs a lowercase name and a label")
        if name in self.groups[object_type]:
            raise HubSpotApiError(
                409, "OBJECT_ALREADY_EXISTS", f"Property group named '{name}' already exists."
            )
        group = {
            "name": name,
            "label": str(body["label"]),
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        self.groups[object_type][name] = group
        return group

    # ---- owners ------------------------------------------------------------------------------
    def _owner_json(self, row: pd.Series) -> dict[str, Any]:
        created = hs_datetime(row["createdAt"])
        user_id = None if pd.isna(row["userId"]) else int(row["userId"])

        def text(value: Any) -> str | None:
            return None if value is None or pd.isna(value) else str(value)

        return {
            "id": str(row["id"]),
            "email": text(row["email"]),
            "type": str(row["type"]),
            "firstName": text(row["firstName"]),
            "lastName": text(row["lastName"]),
            "userId": user_id,
            "userIdIncludingInactive": user_id,
            "createdAt": created,
            "updatedAt": created,
            "archived": bool(row["archived"]),
            "teams": [],
        }

    @_locked
    def list_owners(
        self,
        *,
        limit: int = 100,
        after: str | None = None,
        email: str | None = None,
        archived: bool = False,
        base_url: str = "",
    ) -> dict[str, Any]:
        """``GET /crm/v3/owners``."""
        owners = self.owners[self.owners["archived"] == archived]
        if email:
            owners = owners[owners["email"].str.lower() == email.lower()]
        start = int(after) if after and str(after).isdigit() else 0
        limit = max(1, min(int(limit), 500))
        page = owners.iloc[start : start + limit]
        result: dict[str, Any] = {"results": [self._owner_json(r) for _, r in page.iterrows()]}
        if start + limit < len(owners):
            nxt = str(start + limit)
            result["paging"] = {
                "next": {"after": nxt, "link": f"{base_url}/crm/v3/owners/?after={nxt}"}
            }
        return result

    @_locked
    def get_owner(self, owner_id: str, id_property: str = "id") -> dict[str, Any]:
        """``GET /crm/v3/owners/{id}``."""
        column = "userId" if id_property == "userId" else "id"
        values = self.owners[column].astype(str)
        hits = self.owners[values == str(owner_id)]
        if hits.empty:
            raise HubSpotApiError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found")
        return self._owner_json(hits.iloc[0])

    # ---- associations ------------------------------------------------------------------------
    def _association_list(self, from_type: str, to_type: str, pos: int) -> list[dict[str, Any]]:
        edges = self.edges.get((from_type, to_type))
        if edges is None:
            return []
        labels = ASSOCIATION_TYPES[(from_type, to_type)]
        archived = self.tables[to_type].col("_archived")
        return [
            {
                "toObjectId": int(self.object_id(to_type, t)),
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}
                    for type_id, label in labels
                ],
            }
            for t in edges.targets(pos).tolist()
            if not archived[t]
        ]

    @_locked
    def associations_batch_read(
        self, from_type: str, to_type: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """``POST /crm/v4/associations/{from}/{to}/batch/read`` → (status, body)."""
        from_type, to_type = self.object_type(from_type), self.object_type(to_type)
        inputs = (body or {}).get("inputs")
        if not isinstance(inputs, list):
            raise validation_error("Invalid input JSON: inputs is required")
        if len(inputs) > 1000:
            raise validation_error(f"Too many inputs: {len(inputs)} > 1000")
        started = hs_datetime(self.now64())
        results, errors = [], []
        for item in inputs:
            object_id = str(item.get("id")) if isinstance(item, dict) else ""
            pos = self.position(from_type, object_id)
            targets = self._association_list(from_type, to_type, pos) if pos is not None else []
            if targets:
                results.append({"from": {"id": object_id}, "to": targets})
            else:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND" if pos is None else "NO_ASSOCIATIONS_FOUND",
                        "message": f"No {SINGULAR[to_type]} is associated with "
                        f"{SINGULAR[from_type]} {object_id}.",
                        "context": {"fromObjectId": [object_id]},
                    }
                )
        out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": hs_datetime(self.now64()),
        }
        if errors:
            out["numErrors"] = len(errors)
            out["errors"] = errors
            return 207, out
        return 200, out

    @_locked
    def associations_of(self, from_type: str, object_id: str, to_type: str) -> dict[str, Any]:
        """``GET /crm/v4/objects/{from}/{id}/associations/{to}``."""
        from_type, to_type = self.object_type(from_type), self.object_type(to_type)
        pos = self.position(from_type, object_id)
        if pos is None:
            raise HubSpotApiError(404, "OBJECT_NOT_FOUND", f"{from_type} {object_id} not found")
        return {"results": self._association_list(from_type, to_type, pos)}


def _compare(col: np.ndarray, op: str, value: Any, high: Any = None) -> np.ndarray:
    if op == "EQ":
        return col == value
    if op == "NEQ":
        return col != value
    if op == "LT":
        return col < value
    if op == "LTE":
        return col <= value
    if op == "GT":
        return col > value
    if op == "GTE":
        return col >= value
    if op == "BETWEEN":
        return (col >= value) & (col <= high)
    raise validation_error(f"Unsupported operator {op}")


__all__ = ["OBJECT_TYPES", "HubSpotApiError", "HubSpotPortal"]
