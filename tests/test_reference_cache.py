"""The reference tables and process models are kept per contents of their files (a web server checks one
facility per saved flow, and reading them was most of it): an edited file is read anew, even at the same
size and within the same clock tick, and what a caller changes in what it got does not reach the next load."""

from __future__ import annotations

import shutil
from pathlib import Path

from symbiosis.errors import Problems
from symbiosis.process_models import load_process_models
from symbiosis.reference import data_dir, load_reference, models_dir


def test_an_edited_reference_file_is_read_anew_and_a_loaded_copy_is_the_callers(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    shutil.copytree(data_dir() / "reference", folder)
    first = load_reference(Problems(), directory=folder)
    assert first.fates.loc["landfill_nonhazardous", "cost_per_t"] == 104  # data/reference/fates.csv
    first.fates.loc["landfill_nonhazardous", "cost_per_t"] = -1.0  # the caller's copy only
    assert load_reference(Problems(), directory=folder).fates.loc["landfill_nonhazardous", "cost_per_t"] == 104
    path = folder / "fates.csv"
    text = path.read_text(encoding="utf-8")
    # the same size, written at once: only the contents tell the two apart
    path.write_text(text.replace("landfill,104,", "landfill,105,", 1), encoding="utf-8")
    assert path.stat().st_size == len(text.encode("utf-8"))
    assert load_reference(Problems(), directory=folder).fates.loc["landfill_nonhazardous", "cost_per_t"] == 105


def test_an_override_in_a_new_folder_with_other_contents_is_read(tmp_path: Path) -> None:
    for k, cost in enumerate(("11", "12")):
        override = tmp_path / f"r{k}" / "fates.csv"
        override.parent.mkdir()
        override.write_text("fate_id,name,kind,cost_per_t,co2e_t_per_t,source\n"
                            f"landfill_nonhazardous,Landfill,landfill,{cost},0.005,test\n", encoding="utf-8")
        reference = load_reference(Problems(), overrides={"fates": override})
        assert reference.fates.loc["landfill_nonhazardous", "cost_per_t"] == float(cost)


def test_a_model_file_edited_in_place_is_parsed_anew(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(models_dir() / "brewery.yaml", folder / "brewery.yaml")
    problems = Problems()
    before = load_process_models(problems, folder)["brewery"]
    path = folder / "brewery.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("id: brewery", "id: brewerz", 1), encoding="utf-8")
    after = load_process_models(problems, folder)
    assert before.id == "brewery" and "brewerz" in after  # and the mismatch with the file name is reported
    assert any("differs from the file name" in p.message for p in problems.items)
