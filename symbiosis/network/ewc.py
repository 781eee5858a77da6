"""The European List of Waste (Commission Decision 2000/532/EC as amended by 2014/955/EU): code checks.

``data/reference/ewc.csv`` holds chapters (2 digits), sub-chapters (4) and entries (6) with ``hazardous`` (the
asterisk) and ``mirror`` flags. Codes are text: ``160802`` (spaces and a trailing ``*`` are accepted and
dropped). A code that lost its leading zero in a spreadsheet (``20106``, ``2.0106e5``, ``20106.0``) is refused
with the code it probably was.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from symbiosis.errors import Problems

_SPACES = re.compile(r"[\s.]")


def normalise(code: str) -> str:
    """``'16 08 02*'`` → ``'160802'``; other text is returned stripped."""
    text = str(code).strip().rstrip("*").strip()
    return text.replace(" ", "") if re.fullmatch(r"\d{2}(\s?\d{2}){0,2}", text) else text


def entries(ewc: pd.DataFrame) -> pd.DataFrame:
    """The six-digit entries, indexed by code, with boolean ``hazardous`` and ``mirror``."""
    if ewc.empty:
        return pd.DataFrame(columns=["description", "hazardous", "mirror"])
    six = ewc[ewc["code"].str.fullmatch(r"\d{6}")].set_index("code")
    return pd.DataFrame({"description": six["description"],
                         "hazardous": six["hazardous"].str.lower().eq("true"),
                         "mirror": six["mirror"].str.lower().eq("true")})


def _lost_zero(text: str, known: pd.Index) -> str | None:
    """The six-digit code a number-mangled cell most likely was, if it is a known entry."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not np.isfinite(value) or value != int(value) or value < 0:
        return None
    candidate = str(int(value)).zfill(6)
    return candidate if candidate in known and candidate != text else None


def check_codes(codes: pd.Series, known: pd.Index, problems: Problems, file: str, column: str,
                row_of: pd.Series) -> pd.Series:
    """Normalised codes; each non-empty one not in ``known`` (six-digit entries) is a located problem.

    ``row_of`` gives the spreadsheet row of each position of ``codes``. Checks run once per distinct code."""
    raw = codes.fillna("").astype(str)
    text = raw.map({cell: normalise(cell) for cell in pd.unique(raw)})  # once per distinct cell
    distinct = pd.unique(text[text != ""])
    bad = [c for c in distinct if c not in known]
    for code in bad:
        guess = _lost_zero(code, known)
        for position in np.flatnonzero((text == code).to_numpy()):
            if guess is not None:
                problems.add(file, "EWC code lost its leading zero", row=int(row_of.iat[position]), column=column,
                             found=codes.iat[position], expected="a six-digit code from the European List of Waste",
                             fix=f"write {guess} and keep the column as text so the leading zero stays")
            else:
                chapter = code[:2] if code[:2].isdigit() else ""
                near = [k for k in known if chapter and k.startswith(chapter)][:3]
                problems.add(file, "unknown EWC code", row=int(row_of.iat[position]), column=column,
                             found=codes.iat[position],
                             expected="a six-digit entry of the European List of Waste (data/reference/ewc.csv)",
                             fix=(f"entries of chapter {chapter} include {', '.join(near)}" if near else
                                  "look the code up in data/reference/ewc.csv"))
    return text
