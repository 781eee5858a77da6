"""Facility process models: the balance of a kind of plant per unit of activity (models/*.yaml).

A facility that names a process model and an activity gets estimated flows (coefficient × activity), marked
``data_quality = modelled``; any measured flow of the same facility, direction and material replaces the
modelled one. The model files are validated with pydantic, unknown keys rejected.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from symbiosis.errors import Problems
from symbiosis.reference import models_dir
from symbiosis.tables import read_bytes


class ModelFlow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: str
    category: str
    material: str
    amount: float = Field(ge=0)
    unit: str
    source: str = ""
    note: str = ""
    fate: str = ""
    price: float | None = None
    price_unit: str = ""
    exchangeable: bool | None = None  # default by category, as for measured flows


class ModelQuality(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: str
    material: str
    parameter: str
    value: float
    unit: str
    bound: str = ""
    virgin_value: float | None = None
    source: str = ""
    note: str = ""


class ProcessModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    nace: str = ""
    activity_unit: str
    reference_product: str = ""
    description: str = ""
    sources: dict[str, str] = Field(default_factory=dict)
    flows: list[ModelFlow]
    quality: list[ModelQuality] = Field(default_factory=list)
    #: Processors: substance → output material → share of the substance entering that leaves by that output
    #: (symbiosis.network.substances; what the shares leave unassigned stays in the plant).
    transfer: dict[str, dict[str, float]] = Field(default_factory=dict)
    intake_capacity: float | None = Field(
        None, ge=0, allow_inf_nan=False,
        description="t/yr of secondary material the facility can take in per unit of activity (per year)")
    #: Share of the energy put in that leaves as recorded energy outputs (0 < η ≤ 1): the balance then expects
    #: (1 − η) × energy inputs to be missing (conversion losses) and judges only what is open beyond that.
    energy_efficiency: float | None = Field(default=None, gt=0, le=1)


def yaml_problem(file: str, exc: yaml.YAMLError, problems: Problems) -> None:
    """Record a YAML syntax error with its line and column."""
    mark = getattr(exc, "problem_mark", None)
    detail = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        problems.add(file, f"YAML syntax error: {detail}", row=mark.line + 1,
                     column=f"character {mark.column + 1}", expected="valid YAML (check indentation and colons)")
    else:
        problems.add(file, f"YAML syntax error: {detail}", expected="valid YAML")


def pydantic_problems(file: str, exc: ValidationError, problems: Problems) -> None:
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            problems.add(file, "unknown key", column=location, found=location,
                         expected="only the documented keys", fix="check the spelling of the key")
        elif error["type"] == "missing":
            problems.add(file, "a required key is missing", column=location)
        else:
            problems.add(file, error["msg"], column=location, found=error.get("input"))


# Settings, scenario and model files are a few kB; a bigger one is not one of them.
MAX_YAML_BYTES = 1024 * 1024


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases: they are never needed in these files, and an alias bomb
    ("billion laughs", a few hundred bytes) expands to gigabytes."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (& and *) are not allowed; write the values out", event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: Path, problems: Problems, label: str | None = None) -> object:
    """Read a YAML file (UTF-8, at most 1 MiB, no anchors or aliases), recording problems; None on failure."""
    file = label or str(path)
    raw = read_bytes(path, problems, file, max_bytes=MAX_YAML_BYTES)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        problems.add(file, "not UTF-8 text", row=line, found=f"byte 0x{raw[exc.start]:02x}",
                     expected="a YAML file saved as UTF-8", fix="save the file as UTF-8 in your editor")
        return None
    return yaml_from_text(text, problems, file)


def yaml_from_text(text: str, problems: Problems, file: str) -> object:
    """YAML text parsed as :func:`read_yaml` parses a file's (no anchors or aliases), recording problems."""
    if "\x00" in text:
        problems.add(file, "a binary file, not text (it contains a NUL byte)", expected="YAML text")
        return None
    if not text.strip():
        problems.add(file, "the file is empty", expected="YAML content")
        return None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        yaml_problem(file, exc, problems)
        return None
    except RecursionError:
        problems.add(file, "YAML nested too deeply", expected="a few levels of keys")
        return None


#: Parsed model files by their contents: a server checks one facility per saved flow, and parsing the YAML of
#: every model each time cost more than the rest of the check (docs/performance.md). Only files read without
#: a problem are kept; the pydantic validation still runs on every load.
_parsed_models: dict[bytes, object] = {}


def _read_model_yaml(path: Path, problems: Problems) -> object:
    import hashlib

    try:
        key: bytes | None = (hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
                             if path.stat().st_size <= MAX_YAML_BYTES else None)
    except OSError:
        key = None
    if key is not None and key in _parsed_models:
        return copy.deepcopy(_parsed_models[key])
    before = len(problems.items)
    data = read_yaml(path, problems)
    if key is not None and data is not None and len(problems.items) == before:
        if len(_parsed_models) > 4096:
            _parsed_models.clear()
        _parsed_models[key] = copy.deepcopy(data)
    return data


def load_process_model(path: Path, problems: Problems) -> ProcessModel | None:
    data = _read_model_yaml(path, problems)
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.add(str(path), "expected a mapping at the top level", found=type(data).__name__)
        return None
    try:
        return ProcessModel.model_validate(data)
    except ValidationError as exc:
        pydantic_problems(str(path), exc, problems)
        return None


def load_process_models(problems: Problems, directory: Path | None = None) -> dict[str, ProcessModel]:
    """All process models in ``models/`` by id; problems in any file are recorded."""
    directory = directory or models_dir()
    models: dict[str, ProcessModel] = {}
    for path in sorted(directory.glob("*.yaml")):
        model = load_process_model(path, problems)
        if model is None:
            continue
        if model.id != path.stem:
            problems.add(str(path), "the model id differs from the file name", column="id", found=model.id,
                         expected=path.stem)
        models[model.id] = model
    return models
