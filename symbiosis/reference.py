"""Reference data: materials, substitutions, emission factors, fates, EWC and NACE codes.

The shipped tables live in ``data/reference/``; a region may add rows or override rows (same id) with its own
tables named in ``region.yaml``. Every table is validated on load with located errors, like region files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from symbiosis.errors import Problems
from symbiosis.tables import (
    Table,
    bool_column,
    duplicate_ids,
    number_column,
    read_csv_table,
    require_columns,
    require_text,
    text_column,
)

MATERIAL_CLASSES = frozenset({
    "mineral", "ash", "gypsum", "metal", "chemical", "organic", "biomass", "water", "seawater", "wastewater",
    "fuel", "gas", "energy", "product", "other",
})
FATE_KINDS = frozenset({"landfill", "incineration", "sewer", "sold", "recovery", "other"})


def repository_root() -> Path:
    """The checkout this package runs from (data/ and models/ sit beside the package)."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """``$SYMBIOSIS_DATA`` if set, else ``data/`` beside the package."""
    return Path(os.environ.get("SYMBIOSIS_DATA", repository_root() / "data"))


def models_dir() -> Path:
    """``$SYMBIOSIS_MODELS`` if set, else ``models/`` beside the package."""
    return Path(os.environ.get("SYMBIOSIS_MODELS", repository_root() / "models"))


@dataclass
class Reference:
    """Reference tables, indexed by their ids where they have one."""

    materials: pd.DataFrame
    substitutions: pd.DataFrame
    emission_factors: pd.DataFrame
    fates: pd.DataFrame
    ewc: pd.DataFrame = field(default_factory=pd.DataFrame)
    nace: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)  # non-fatal findings from reading the tables
    #: Heat carriers (index ``carrier``): reach, losses and pipe costs (data/reference/energy_carriers.csv).
    energy_carriers: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Quality parameters (index ``parameter``) with ``substance`` (bool): which are concentrations of a
    #: substance, traced through the network (data/reference/quality_parameters.csv; symbiosis.network.substances).
    quality_parameters: pd.DataFrame = field(default_factory=pd.DataFrame)

    def copy(self) -> Reference:
        return Reference(self.materials.copy(), self.substitutions.copy(), self.emission_factors.copy(),
                         self.fates.copy(), self.ewc.copy(), self.nace.copy(), warnings=list(self.warnings),
                         energy_carriers=self.energy_carriers.copy(),
                         quality_parameters=self.quality_parameters.copy())

    def density(self, material: str) -> float | None:
        """Density in t/m3, or None where the material is unknown or has none."""
        cache = self.__dict__.setdefault("_density_cache", {})
        if material not in cache:
            if material not in self.materials.index:
                cache[material] = None
            else:
                value = float(self.materials.at[material, "density_t_per_m3"])
                cache[material] = value if value == value else None
        return cache[material]

    def virgin_co2e(self, material: str) -> float:
        rows = self.emission_factors
        hit = rows[(rows["kind"] == "virgin") & (rows["item"] == material)]
        return float(hit["co2e_t_per_t"].iloc[0]) if len(hit) else 0.0


def _materials(table: Table, problems: Problems) -> pd.DataFrame:
    if not require_columns(table, ["material_id", "name", "class", "density_t_per_m3"], problems,
                           known=COLUMNS["materials"]):
        return pd.DataFrame()
    duplicate_ids(table, "material_id", problems)
    frame = pd.DataFrame({
        "material_id": text_column(table, "material_id"),
        "name": text_column(table, "name"),
        "class": text_column(table, "class"),
        "density_t_per_m3": number_column(table, "density_t_per_m3", problems, allow_negative=False,
                                          expected="a density in t/m3"),
        "ewc_codes": text_column(table, "ewc_codes"),
        "hazardous": bool_column(table, "hazardous", problems).astype(bool),
        "max_distance_km": number_column(table, "max_distance_km", problems, allow_negative=False),
        "source": text_column(table, "source"),
    })
    for position, klass in enumerate(frame["class"]):
        if klass not in MATERIAL_CLASSES:
            problems.add(table.file, "unknown material class", row=table.row_number(position),
                         column="class", found=klass, expected=", ".join(sorted(MATERIAL_CLASSES)))
    return frame


def _substitutions(table: Table, problems: Problems) -> pd.DataFrame:
    if not require_columns(table, ["secondary_material", "primary_material", "ratio"], problems,
                           known=COLUMNS["substitutions"]):
        return pd.DataFrame()
    require_text(table, ["secondary_material", "primary_material"], problems)
    return pd.DataFrame({
        "secondary_material": text_column(table, "secondary_material"),
        "primary_material": text_column(table, "primary_material"),
        "ratio": number_column(table, "ratio", problems, required=True, minimum=1e-9, maximum=1e6,
                               expected="t of primary replaced per t of secondary"),
        "max_share": number_column(table, "max_share", problems, minimum=0, maximum=1,
                                   expected="a share 0..1").fillna(1.0),
        "processing_cost_per_t": number_column(table, "processing_cost_per_t", problems).fillna(0.0),
        "processing_co2e_per_t": number_column(table, "processing_co2e_per_t", problems).fillna(0.0),
        "max_distance_km": number_column(table, "max_distance_km", problems, allow_negative=False),
        "source": text_column(table, "source"),
    })


def _emission_factors(table: Table, problems: Problems) -> pd.DataFrame:
    if not require_columns(table, ["item", "kind", "co2e_t_per_t"], problems, known=COLUMNS["emission_factors"]):
        return pd.DataFrame()
    require_text(table, ["item"], problems)
    frame = pd.DataFrame({
        "item": text_column(table, "item"),
        "kind": text_column(table, "kind"),
        "co2e_t_per_t": number_column(table, "co2e_t_per_t", problems, required=True),
        "source": text_column(table, "source"),
        "year": text_column(table, "year"),
    })
    for position, kind in enumerate(frame["kind"]):
        if kind not in {"virgin", "fate", "transport"}:
            problems.add(table.file, "unknown emission factor kind", row=table.row_number(position),
                         column="kind", found=kind, expected="virgin, fate or transport")
    return frame


def _fates(table: Table, problems: Problems) -> pd.DataFrame:
    if not require_columns(table, ["fate_id", "kind", "cost_per_t"], problems, known=COLUMNS["fates"]):
        return pd.DataFrame()
    duplicate_ids(table, "fate_id", problems)
    frame = pd.DataFrame({
        "fate_id": text_column(table, "fate_id"),
        "name": text_column(table, "name"),
        "kind": text_column(table, "kind"),
        "cost_per_t": number_column(table, "cost_per_t", problems, required=True),
        "co2e_t_per_t": number_column(table, "co2e_t_per_t", problems).fillna(0.0),
        # the tax part of cost_per_t, where known, so a scenario can change a tax and nothing else
        "tax_per_t": number_column(table, "tax_per_t", problems, allow_negative=False),
        "source": text_column(table, "source"),
    })
    for position, kind in enumerate(frame["kind"]):
        if kind not in FATE_KINDS:
            problems.add(table.file, "unknown fate kind", row=table.row_number(position), column="kind",
                         found=kind, expected=", ".join(sorted(FATE_KINDS)))
    return frame


# The columns each reference table may have; any other header is an error (a region's override included).
COLUMNS: dict[str, list[str]] = {
    "materials": ["material_id", "name", "class", "density_t_per_m3", "ewc_codes", "hazardous", "max_distance_km",
                  "source", "note"],
    "substitutions": ["secondary_material", "primary_material", "ratio", "max_share", "processing_cost_per_t",
                      "processing_co2e_per_t", "max_distance_km", "source", "note"],
    "emission_factors": ["item", "kind", "co2e_t_per_t", "source", "year", "note"],
    "fates": ["fate_id", "name", "kind", "cost_per_t", "co2e_t_per_t", "tax_per_t", "source", "note"],
}
# A region's own reference table is small; anything bigger is not one.
MAX_OVERRIDE_BYTES = 16 * 1024 * 1024

_PARSERS = {
    "materials": (_materials, "material_id"),
    "substitutions": (_substitutions, None),
    "emission_factors": (_emission_factors, None),
    "fates": (_fates, "fate_id"),
}


def _merge(base: pd.DataFrame, extra: pd.DataFrame, key: str | list[str]) -> pd.DataFrame:
    """Rows of ``extra`` replace rows of ``base`` with the same key and add the others."""
    if extra.empty:
        return base
    if base.empty:
        return extra
    keys = [key] if isinstance(key, str) else key
    merged = pd.concat([base, extra], ignore_index=True)
    return merged.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)


_MERGE_KEYS: dict[str, str | list[str]] = {
    "materials": "material_id",
    "substitutions": ["secondary_material", "primary_material"],
    "emission_factors": ["item", "kind"],
    "fates": "fate_id",
}


#: References loaded without a problem, by what they were read from (:func:`_reference_key`); a copy is
#: handed out. A web server checks one facility per saved flow, and reading the reference tables was half of it.
_loaded_references: dict[tuple[object, ...], Reference] = {}


def _reference_key(overrides: dict[str, Path] | None, directory: Path) -> tuple[object, ...] | None:
    """The files a load reads, by their contents: the CSV files of the reference folders (about 120 KB shipped,
    hashed in well under a millisecond) and the overrides (in the region's folder, often a new temporary one).
    None (no cache) for a folder with more than 64 files or 16 MB."""
    import hashlib

    parts: list[object] = []
    try:
        for folder in (directory, data_dir() / "reference", repository_root() / "data" / "reference"):
            resolved = folder.resolve()
            files = sorted(p for p in resolved.iterdir() if p.is_file()) if resolved.is_dir() else []
            if len(files) > 64 or sum(p.stat().st_size for p in files) > 16 * 1024 * 1024:
                return None
            parts.append((str(resolved), tuple((p.name, hashlib.blake2b(p.read_bytes(), digest_size=16).digest())
                                               for p in files)))
        for name, path in sorted((overrides or {}).items()):
            parts.append((name, hashlib.blake2b(Path(path).read_bytes(), digest_size=16).digest()))
    except OSError:
        return None
    return tuple(parts)


def load_reference(problems: Problems, overrides: dict[str, Path] | None = None,
                   directory: Path | None = None) -> Reference:
    """Load the shipped reference tables plus region overrides; problems are collected, not raised. A load
    from the same files as an earlier one without a problem returns a copy of that one."""
    directory = directory or data_dir() / "reference"
    key = _reference_key(overrides, directory)
    if key is not None and key in _loaded_references:
        return _loaded_references[key].copy()
    before = len(problems.items)
    reference = _load_reference(problems, overrides, directory)
    if key is not None and len(problems.items) == before:
        if len(_loaded_references) >= 64:
            _loaded_references.clear()
        _loaded_references[key] = reference.copy()
    return reference


def _load_reference(problems: Problems, overrides: dict[str, Path] | None, directory: Path) -> Reference:
    frames: dict[str, pd.DataFrame] = {}
    warnings: list[str] = []
    for name, (parser, _index) in _PARSERS.items():
        path = directory / f"{name}.csv"
        table = read_csv_table(path, problems, label=_label(path))
        frame = parser(table, problems) if table is not None else pd.DataFrame()
        warnings.extend(table.warnings if table is not None else [])
        extra_path = (overrides or {}).get(name)
        if extra_path is not None:
            extra_table = read_csv_table(extra_path, problems, label=_label(extra_path), max_bytes=MAX_OVERRIDE_BYTES)
            if extra_table is not None:
                warnings.extend(extra_table.warnings)
                frame = _merge(frame, parser(extra_table, problems), _MERGE_KEYS[name])
        frames[name] = frame
    materials = frames["materials"]
    if not materials.empty:
        for position, dup in enumerate(materials["material_id"].duplicated()):
            if dup:
                problems.add(_label(directory / "materials.csv"), "duplicate material id", row=position + 2,
                             column="material_id", found=materials["material_id"].iloc[position])
        materials = materials.drop_duplicates("material_id").set_index("material_id", drop=False)
    fates = frames["fates"]
    if not fates.empty:
        fates = fates.drop_duplicates("fate_id", keep="last").set_index("fate_id", drop=False)
    ewc = _optional(directory / "ewc.csv")
    nace = _optional(directory / "nace.csv")
    reference = Reference(materials, frames["substitutions"], frames["emission_factors"], fates, ewc, nace,
                          energy_carriers=_energy_carriers(directory, problems), warnings=warnings,
                          quality_parameters=_quality_parameters(directory, problems))
    _check_consistency(reference, directory, problems)
    return reference


ENERGY_CARRIER_COLUMNS = ("max_distance_km", "loss_fraction_per_km", "pipe_cost_per_mwh_km",
                          "fixed_cost_per_km_yr", "virgin_price_per_mwh", "virgin_co2e_per_mwh", "fuel_mwh_per_mwh")


def _energy_carriers(directory: Path, problems: Problems) -> pd.DataFrame:
    """energy_carriers.csv of ``directory``, else that of the data folder, else the shipped one (a reference
    folder made for a test or a study need not repeat it); every figure a number ≥ 0, a loss per km below 1."""
    candidates = [directory / "energy_carriers.csv", data_dir() / "reference" / "energy_carriers.csv",
                  repository_root() / "data" / "reference" / "energy_carriers.csv"]
    path = next((p for p in candidates if p.exists()), candidates[0])
    frame = _optional(path)
    if frame.empty:
        return pd.DataFrame(columns=["carrier", *ENERGY_CARRIER_COLUMNS, "source"]).set_index("carrier", drop=False)
    label = _label(path)
    for column in ("carrier", *ENERGY_CARRIER_COLUMNS):
        if column not in frame.columns:
            problems.add(label, "missing column", column=column, expected="the columns of docs/data-format.md")
            return pd.DataFrame(columns=["carrier", *ENERGY_CARRIER_COLUMNS, "source"]).set_index("carrier", drop=False)
    for column in ENERGY_CARRIER_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        limit = 1.0 if column == "loss_fraction_per_km" else np.inf
        bad = values.isna() | (values < 0) | (values >= limit)
        for position in np.flatnonzero(bad.to_numpy()):
            problems.add(label, "bad value", row=int(position) + 2, column=column, found=frame[column].iloc[position],
                         expected="a number ≥ 0" + (" and < 1" if column == "loss_fraction_per_km" else ""))
        frame[column] = values
    return frame.drop_duplicates("carrier", keep="last").set_index("carrier", drop=False)


QUALITY_PARAMETER_COLUMNS = ["parameter", "substance", "note", "source"]


def _quality_parameters(directory: Path, problems: Problems) -> pd.DataFrame:
    """quality_parameters.csv of ``directory``, else that of the data folder, else the shipped one:
    ``parameter, substance`` (true/false), ``note, source``; a parameter at most once."""
    candidates = [directory / "quality_parameters.csv", data_dir() / "reference" / "quality_parameters.csv",
                  repository_root() / "data" / "reference" / "quality_parameters.csv"]
    path = next((p for p in candidates if p.exists()), candidates[0])
    empty = pd.DataFrame(columns=QUALITY_PARAMETER_COLUMNS).set_index("parameter", drop=False)
    table = read_csv_table(path, problems, label=_label(path)) if path.exists() else None
    if table is None:
        return empty
    if not require_columns(table, ["parameter", "substance"], problems, known=QUALITY_PARAMETER_COLUMNS):
        return empty
    require_text(table, ["parameter"], problems)
    duplicate_ids(table, "parameter", problems)
    frame = pd.DataFrame({
        "parameter": text_column(table, "parameter").str.lower().to_numpy(),
        "substance": bool_column(table, "substance", problems).astype("boolean").fillna(False).astype(bool)
        .to_numpy(),
        "note": text_column(table, "note").to_numpy(),
        "source": text_column(table, "source").to_numpy(),
    })
    return frame.drop_duplicates("parameter", keep="first").set_index("parameter", drop=False)


def _optional(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _check_consistency(reference: Reference, directory: Path, problems: Problems) -> None:
    if not reference.materials.empty and not reference.ewc.empty and "ewc_codes" in reference.materials:
        from symbiosis.network import ewc

        known = ewc.entries(reference.ewc).index
        codes = reference.materials["ewc_codes"].fillna("").astype(str).reset_index(drop=True)
        for position, cell in enumerate(codes):
            for code in (c.strip() for c in cell.split(";") if c.strip()):
                if ewc.normalise(code) not in known:
                    problems.add(_label(directory / "materials.csv"), "unknown EWC code", row=position + 2,
                                 column="ewc_codes", found=code,
                                 expected="six-digit entries of the European List of Waste (ewc.csv), ';'-separated")
    if reference.materials.empty or reference.substitutions.empty:
        return
    known = set(reference.materials.index)
    file = _label(directory / "substitutions.csv")
    for position, row in reference.substitutions.reset_index(drop=True).iterrows():
        for column in ("secondary_material", "primary_material"):
            if row[column] not in known:
                problems.add(file, "unknown material", row=int(position) + 2, column=column,  # type: ignore[call-overload]
                             found=row[column], expected="a material_id from materials.csv")
    carriers = set(reference.energy_carriers.index) if not reference.energy_carriers.empty else set()
    if carriers:  # heat is exchanged in MWh and materials in t: no arc may join them (only a processor can)
        subs = reference.substitutions.reset_index(drop=True)
        mixed = subs["secondary_material"].isin(carriers) != subs["primary_material"].isin(carriers)
        for position in mixed[mixed].index:
            problems.add(file, "a substitution joins a heat carrier and a material", row=int(position) + 2,
                         column="primary_material", found=f"{subs.at[position, 'secondary_material']} → "
                         f"{subs.at[position, 'primary_material']}",
                         expected="heat → heat (energy_carriers.csv) or material → material; a plant that turns "
                                  "one into the other is a processor (processors.csv)")


def _label(path: Path) -> str:
    """Paths in messages relative to the working directory where possible, as the user typed them."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
