"""Forms whose checks are the library's: each candidate row goes through symbiosis.inputs (bridge.py)."""

from __future__ import annotations

from typing import Any

from django import forms

from . import bridge
from .models import STEPS, Facility, Firm, Flow, Membership, Permit, Programme, QualityEntry, direction_of


class _Checked(forms.ModelForm):
    """Adds the problems ``symbiosis check`` finds on the row to the field they concern."""

    table = ""
    programme: Programme
    #: The outcome of the checks (bridge.check_row), kept for the view: a flow's facility as loaded with it.
    checked: bridge.CheckedRow | None = None

    def row(self) -> dict[str, str]:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        self.checked = bridge.check_row(self.programme, self.table, self.row())
        for column, messages in self.checked.problems.items():
            field = column if column in self.fields else None
            for message in messages:
                self.add_error(field, message if field else f"{column or 'row'}: {message}")
        return cleaned


class FacilityForm(_Checked):
    table = "facilities"

    class Meta:
        model = Facility
        fields = ["facility_id", "name", "sector", "lat", "lon", "confidential", "process_model", "activity",
                  "activity_unit", "intake_capacity_t_per_yr", "source", "note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, programme: Programme, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.programme = programme
        if self.instance.pk:  # ids are what flows and runs refer to: fixed once created
            self.fields["facility_id"].disabled = True

    def row(self) -> dict[str, str]:
        candidate = Facility(**{k: self.cleaned_data.get(k, getattr(self.instance, k))
                                for k in self.Meta.fields})
        return bridge.facility_row(candidate)


class FlowForm(_Checked):
    table = "flows"

    class Meta:
        model = Flow
        fields = ["flow_id", "category", "material", "amount", "unit", "fate", "price", "price_unit",
                  "max_secondary_share", "max_distance_km", "uncertainty_pct", "ewc_code", "source", "note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, facility: Facility, step: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.facility = facility
        self.programme = facility.programme
        categories = STEPS[step][1] if step in STEPS else (self.instance.category,)
        self.fields["category"] = forms.ChoiceField(choices=[(c, c.replace("_", " ")) for c in categories])
        if self.instance.pk:
            self.fields["flow_id"].disabled = True

    def clean_flow_id(self) -> str:
        flow_id = str(self.cleaned_data.get("flow_id", ""))
        if not self.instance.pk and Flow.objects.filter(facility__programme=self.programme, flow_id=flow_id).exists():
            raise forms.ValidationError("this flow_id is taken; choose another")
        return flow_id

    def row(self) -> dict[str, str]:
        data = {k: self.cleaned_data.get(k, getattr(self.instance, k)) for k in self.Meta.fields}
        candidate = Flow(facility=self.facility, direction=direction_of(data["category"]), **data)
        return bridge.flow_row(candidate, self.facility.facility_id)

    def save(self, commit: bool = True) -> Flow:
        flow = super().save(commit=False)
        flow.facility = self.facility
        flow.direction = direction_of(flow.category)
        if commit:
            flow.save()
        return flow


#: The bounds of a quality row (docs/data-format.md, "quality").
BOUNDS = [("", "none: a measured value (a supply's)"), ("max", "max: a demand's upper limit"),
          ("min", "min: a demand's lower limit")]


class QualityForm(_Checked):
    """A parameter of a flow's composition: a row of the quality table, checked with the flow's facility."""

    table = "quality"

    class Meta:
        model = QualityEntry
        fields = ["parameter", "value", "unit", "bound", "virgin_value", "source", "note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, flow: Flow, **kwargs: Any):
        kwargs.setdefault("prefix", "quality")  # beside the flow's own form on its page
        super().__init__(*args, **kwargs)
        self.flow = flow
        self.programme = flow.facility.programme
        self.fields["bound"] = forms.ChoiceField(choices=BOUNDS, required=False,
                                                 help_text=QualityEntry._meta.get_field("bound").help_text)
        self.fields["parameter"].widget.attrs["list"] = "quality-parameters"
        if not self.instance.pk and flow.direction == "in":  # a demand's row is most often its limit
            self.fields["bound"].initial = "max"

    def row(self) -> dict[str, str]:
        data = {k: self.cleaned_data.get(k, getattr(self.instance, k)) for k in self.Meta.fields}
        return {"flow_id": self.flow.flow_id, **{k: str(v or "") for k, v in data.items()},
                "_pk": str(self.instance.pk or "")}

    def save(self, commit: bool = True) -> QualityEntry:
        entry = super().save(commit=False)
        entry.flow = self.flow
        if commit:
            entry.save()
        return entry


class PermitForm(_Checked):
    """An EWC code a facility's permit lets it receive: a row of the permits table."""

    table = "permits"

    class Meta:
        model = Permit
        fields = ["ewc_code", "max_t_per_yr", "source", "note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, facility: Facility, **kwargs: Any):
        kwargs.setdefault("prefix", "permit")
        super().__init__(*args, **kwargs)
        self.facility = facility
        self.programme = facility.programme

    def row(self) -> dict[str, str]:
        data = {k: self.cleaned_data.get(k, getattr(self.instance, k)) for k in self.Meta.fields}
        return {"facility_id": self.facility.facility_id, **{k: str(v or "") for k, v in data.items()},
                "_pk": str(self.instance.pk or "")}

    def save(self, commit: bool = True) -> Permit:
        permit = super().save(commit=False)
        permit.facility = self.facility
        if commit:
            permit.save()
        return permit


class UploadForm(forms.Form):
    workbook = forms.FileField(help_text="An .xlsx workbook with sheets 'facilities' and 'flows', and optionally "
                                         "'quality' and 'permits' (the region format)")


class FirmSettingsForm(forms.ModelForm):
    class Meta:
        model = Firm
        fields = ["show_name_to_partners"]


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.ROLES)
    firm = forms.ModelChoiceField(queryset=Firm.objects.none(), required=False,
                                  help_text="For a firm user: an existing firm, or a new one below")
    new_firm = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, programme: Programme, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["firm"].queryset = Firm.objects.filter(programme=programme)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("role") == Membership.FIRM and not cleaned.get("firm") and not cleaned.get("new_firm"):
            self.add_error("firm", "a firm user belongs to a firm: choose one or name a new one")
        if cleaned.get("role") != Membership.FIRM and (cleaned.get("firm") or cleaned.get("new_firm")):
            self.add_error("firm", "only firm users belong to a firm")
        return cleaned


class IntroductionStatusForm(forms.Form):
    from .models import Introduction

    status = forms.ChoiceField(choices=Introduction.STATUSES)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RunForm(forms.Form):
    from .models import Run

    kind = forms.ChoiceField(choices=Run.KINDS, initial="optimise", required=False)
    carbon_price = forms.FloatField(required=False, min_value=0, help_text="Money per t CO2e (default: the region's)")
    carbon_prices = forms.CharField(
        required=False, max_length=200, help_text="Scenario comparison: carbon prices to compare with the programme "
        "as it is, e.g. '50, 100, 200'")
    landfill_tax_factor = forms.FloatField(
        required=False, min_value=0, help_text="Scenario comparison: every landfill fate's tax multiplied by this "
        "factor, e.g. 2 (a landfill tax that doubles)")
    closing = forms.CharField(
        required=False, max_length=2000, help_text="Scenario comparison: facility ids that close, separated by "
        "commas (one scenario, all of them closed: a power station closes)")
    scenarios = forms.CharField(
        required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Scenario comparison, any change a scenario file of `symbiosis compare` takes: a YAML list of "
        "scenarios, each with a name, a description and its changes (docs/scenarios.md)")
    samples = forms.IntegerField(required=False, min_value=1, max_value=5000, initial=200,
                                 help_text="Uncertainty analysis: Monte Carlo samples")
    seed = forms.IntegerField(required=False, min_value=0, initial=0, help_text="Uncertainty analysis: seed")

    def __init__(self, *args: Any, programme: Programme | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.programme = programme

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        cleaned["kind"] = cleaned.get("kind") or "optimise"
        if cleaned.get("kind") == "compare":
            try:
                prices = [float(p) for p in str(cleaned.get("carbon_prices") or "").replace(";", ",").split(",")
                          if p.strip()]
            except ValueError:
                prices = []
                self.add_error("carbon_prices", "expected numbers separated by commas, e.g. 50, 100, 200")
            if any(p < 0 for p in prices):
                self.add_error("carbon_prices", "carbon prices are not negative")
            scenarios = _run_form_scenarios(self, cleaned)
            if not prices and not scenarios and not self.errors:
                self.add_error("carbon_prices", "a comparison needs at least one scenario: a carbon price, a "
                               "landfill tax factor, facilities that close or scenarios")
            if len(prices) + len(scenarios) > 8:
                self.add_error("carbon_prices", "at most 8 scenarios at once")
            cleaned["options"] = {"carbon_prices": prices}
            if scenarios:
                cleaned["options"]["scenarios"] = scenarios
        elif cleaned.get("kind") == "uncertainty":
            cleaned["options"] = {"samples": cleaned.get("samples") or 200, "seed": cleaned.get("seed") or 0}
        else:
            cleaned["options"] = {}
        return cleaned


def _run_form_scenarios(form: RunForm, cleaned: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison's scenarios from the shortcuts (landfill tax, facilities closing) and the YAML field,
    each checked as ``symbiosis compare`` checks a scenario file (its fields) and applied to the programme's
    region (unknown facilities, fates, flows...), every problem at its field. Returns them as plain data:
    ``{"name", "description", "changes"}``."""
    from pydantic import ValidationError

    from symbiosis.errors import InputError, Problems
    from symbiosis.process_models import pydantic_problems, yaml_from_text
    from symbiosis.scenarios import Scenario, apply_scenario

    found: list[tuple[str, dict[str, Any]]] = []
    factor = cleaned.get("landfill_tax_factor")
    region = None
    if form.programme is not None and (factor is not None or cleaned.get("closing") or cleaned.get("scenarios")):
        from . import search_cache

        region = search_cache.snapshot(form.programme).region
    if factor is not None:
        fates: list[str] = []
        if region is not None and "tax_per_t" in region.reference.fates.columns:
            table = region.reference.fates
            fates = [str(f) for f in table.index[table.index.astype(str).str.startswith("landfill")
                                                 & table["tax_per_t"].notna().to_numpy()]]
        if region is not None and not fates:
            form.add_error("landfill_tax_factor", "the programme's reference fates have no landfill with a tax")
        found.append(("landfill_tax_factor", {
            "name": f"landfill tax x{factor:g}".replace(".", "_"),
            "description": f"Every landfill fate's tax multiplied by {factor:g}",
            "changes": [{"fate_cost": {"fate": fate, "tax_factor": float(factor)}} for fate in fates]}))
    closing = [f.strip() for f in str(cleaned.get("closing") or "").replace(";", ",").split(",") if f.strip()]
    if closing:
        found.append(("closing", {"name": "closing", "description": "Closed: " + ", ".join(closing),
                                  "changes": [{"remove_facility": {"facility": f}} for f in closing]}))
    text = str(cleaned.get("scenarios") or "").strip()
    if text:
        problems = Problems()
        data = yaml_from_text(text, problems, "scenarios")  # the loader of scenario files: no anchors or aliases
        for problem in problems.items:
            form.add_error("scenarios", f"not YAML: {problem}")
        listed = [] if data is None else data if isinstance(data, list) else [data]
        for number, item in enumerate(listed, start=1):
            if not isinstance(item, dict):
                form.add_error("scenarios", f"scenario {number}: expected a mapping with name, description and "
                               f"changes; found {type(item).__name__}")
                continue
            found.append(("scenarios", {"name": item.get("name"), "description": item.get("description", ""),
                                        "changes": item.get("changes", [])}))
    names: set[str] = {"programme"}
    scenarios = []
    for field, data in found:
        try:
            scenario = Scenario.model_validate({**data, "base": "."})
        except ValidationError as exc:
            problems = Problems()
            pydantic_problems(f"scenario {data.get('name')!r}", exc, problems)  # as a scenario file's are told
            for problem in problems.items:
                form.add_error(field, str(problem))
            continue
        if scenario.name.lower() in names or scenario.name.lower().startswith("carbon_price_"):
            form.add_error(field, f"scenario {scenario.name!r}: the name is taken (one name a scenario; "
                           f"'programme' and 'carbon_price_…' are the comparison's own)")
            continue
        names.add(scenario.name.lower())
        if region is not None:
            try:
                apply_scenario(region, scenario)
            except InputError as exc:
                for problem in exc.problems:
                    form.add_error(field, str(problem))
                continue
        scenarios.append({"name": scenario.name, "description": scenario.description,
                          "changes": [c.model_dump(exclude_none=True) for c in scenario.changes]})
    return scenarios

