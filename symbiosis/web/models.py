"""The programme's database: a region kept as rows, its members, and the record of its work.

Facilities and flows hold the cells of the region format (docs/data-format.md) as text, exactly as a firm
typed them: :mod:`symbiosis.web.bridge` writes them out as a region folder and :mod:`symbiosis.inputs` checks
and converts them, so the web app and ``symbiosis check`` cannot disagree. Every change to a facility, flow or
introduction is kept with who made it and when (django-simple-history).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from symbiosis.region import IN_CATEGORIES, OUT_CATEGORIES

#: The four steps of a mass-balance study, and the flow categories each step enters.
STEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "purchases": ("Purchases and raw materials", ("raw_material", "semi_finished", "water", "energy")),
    "auxiliaries": ("Auxiliaries", ("auxiliary",)),
    "residues": ("Residual streams", ("by_product", "waste", "wastewater", "emission")),
    "products": ("Products", ("product",)),
}


def step_of(category: str) -> str:
    for step, (_label, categories) in STEPS.items():
        if category in categories:
            return step
    return "other"


def direction_of(category: str) -> str:
    if category in IN_CATEGORIES:
        return "in"
    if category in OUT_CATEGORIES:
        return "out"
    return "stock"


class Programme(models.Model):
    """A symbiosis programme: one region, run by an agency."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    settings_yaml = models.TextField(help_text="region.yaml of the programme's region")
    #: Region tables the app does not edit yet (arcs, processors), as CSV text by table name. The quality and
    #: permits tables are rows of their own (QualityEntry, Permit); what is left here under their names are rows
    #: that name no flow or facility of the programme (kept, and reported by the checks, not dropped).
    extra_tables = models.JSONField(default=dict, blank=True)
    #: Raised on every change of a facility or flow: the cache of loaded regions is keyed by it.
    data_version = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def touch(self) -> None:
        Programme.objects.filter(pk=self.pk).update(data_version=models.F("data_version") + 1)
        self.refresh_from_db(fields=["data_version"])


class Firm(models.Model):
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="firms")
    name = models.CharField(max_length=200)
    show_name_to_partners = models.BooleanField(
        default=False, help_text="Partners see the firm's name; otherwise only its sector and a distance band")
    history = HistoricalRecords()

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    AGENCY, FACILITATOR, FIRM = "agency", "facilitator", "firm"
    ROLES = [(AGENCY, "agency staff"), (FACILITATOR, "facilitator"), (FIRM, "firm user")]

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="members")
    role = models.CharField(max_length=20, choices=ROLES)
    firm = models.ForeignKey(Firm, null=True, blank=True, on_delete=models.CASCADE, related_name="users")

    @property
    def sees_programme(self) -> bool:
        return self.role in (self.AGENCY, self.FACILITATOR)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=(models.Q(role="firm", firm__isnull=False)
                       | (~models.Q(role="firm") & models.Q(firm__isnull=True))),
            name="firm_users_have_a_firm")]


class Facility(models.Model):
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="facilities")
    firm = models.ForeignKey(Firm, on_delete=models.CASCADE, related_name="facilities")
    facility_id = models.CharField(max_length=100)
    name = models.CharField(max_length=300)
    sector = models.CharField(max_length=20, help_text="NACE code, e.g. 23.62")
    lat = models.CharField(max_length=40)
    lon = models.CharField(max_length=40)
    confidential = models.BooleanField(default=False)
    process_model = models.CharField(max_length=100, blank=True)
    activity = models.CharField(max_length=40, blank=True)
    activity_unit = models.CharField(max_length=40, blank=True)
    intake_capacity_t_per_yr = models.CharField(max_length=40, blank=True)
    source = models.CharField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["programme", "facility_id"], name="facility_id_unique")]
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


class Flow(models.Model):
    facility = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="flows")
    flow_id = models.CharField(max_length=100)
    direction = models.CharField(max_length=10)
    category = models.CharField(max_length=30)
    material = models.CharField(max_length=100)
    amount = models.CharField(max_length=40)
    unit = models.CharField(max_length=40)
    fate = models.CharField(max_length=100, blank=True)
    price = models.CharField(max_length=40, blank=True)
    price_unit = models.CharField(max_length=40, blank=True)
    exchangeable = models.CharField(max_length=10, blank=True)
    max_secondary_share = models.CharField(max_length=40, blank=True)
    max_distance_km = models.CharField(max_length=40, blank=True)
    uncertainty_pct = models.CharField(max_length=40, blank=True)
    ewc_code = models.CharField(max_length=20, blank=True)
    source = models.CharField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]

    @property
    def step(self) -> str:
        return step_of(self.category)

    def __str__(self) -> str:
        return self.flow_id


class QualityEntry(models.Model):
    """One row of the quality table (docs/data-format.md, "quality"): a parameter of a flow's composition. On a
    supply its measured value; on a demand a ``max`` or ``min`` bound (the limit) and the virgin material's own
    value. Cells as the firm typed them, checked by symbiosis.inputs (symbiosis.web.composition)."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="quality")
    parameter = models.CharField(max_length=100, help_text="e.g. chloride, moisture, calorific_value")
    value = models.CharField(max_length=40, help_text="the measured value, or the limit under a bound")
    unit = models.CharField(max_length=40, help_text="e.g. %, mg/kg, degC; one unit per parameter across the programme "
                                                     "(or one convertible to it)")
    bound = models.CharField(max_length=10, blank=True,
                             help_text="empty for a measured value; max or min for a demand's limit")
    virgin_value = models.CharField(max_length=40, blank=True, help_text="a demand's virgin material value "
                                                                         "(default 0 under max, the limit under min)")
    source = models.CharField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]  # the order of the quality table: the first unit of a parameter is the programme's

    def __str__(self) -> str:
        return f"{self.flow.flow_id}: {self.parameter} {self.bound} {self.value} {self.unit}".replace("  ", " ")


class Permit(models.Model):
    """One row of the permits table (docs/data-format.md, "permits"): an EWC code the facility's environmental
    permit lets it receive, with an optional tonnage a year."""

    facility = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="permits")
    ewc_code = models.CharField(max_length=20,
                                help_text="a six-digit entry of the European List of Waste, e.g. 100105")
    max_t_per_yr = models.CharField(max_length=40, blank=True,
                                    help_text="the permitted tonnage, t/yr (empty: no limit)")
    source = models.CharField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.facility.facility_id}: permit {self.ewc_code}"


class Invitation(models.Model):
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Membership.ROLES)
    firm = models.ForeignKey(Firm, null=True, blank=True, on_delete=models.CASCADE)
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)


class Interest(models.Model):
    """A firm's "I'm interested" in one receiver of one of its streams: the facilitator brokers it."""

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="interests")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="interests")
    receiver = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="+")
    demand_flow_id = models.CharField(max_length=100)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)


class Introduction(models.Model):
    """An introduction the facilitator brokers; the list is the region's record of realised exchanges."""

    STATUSES = [("proposed", "proposed"), ("in_talks", "in talks"), ("running", "running"), ("stopped", "stopped")]
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="introductions")
    interest = models.ForeignKey(Interest, null=True, blank=True, on_delete=models.SET_NULL)
    supplier = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="+")
    receiver = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="+")
    material = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=STATUSES, default="proposed")
    note = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()


class Run(models.Model):
    """A background ``symbiosis run`` of the programme; its status lives here so it survives a reload."""

    STATUSES = [("queued", "queued"), ("running", "running"), ("done", "done"), ("failed", "failed")]
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=STATUSES, default="queued")
    progress = models.TextField(blank=True)
    carbon_price = models.FloatField(null=True, blank=True)
    out_dir = models.CharField(max_length=500, blank=True)
    kpis = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    KINDS = [("optimise", "optimisation"), ("compare", "scenario comparison"), ("uncertainty", "uncertainty analysis")]
    #: What the run does: ``symbiosis run``, ``symbiosis compare`` or ``symbiosis uncertainty`` (jobs.py).
    kind = models.CharField(max_length=20, choices=KINDS, default="optimise")
    #: The kind's options: ``carbon_prices`` (compare), ``samples`` and ``seed`` (uncertainty).
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-pk"]


class ProgrammeChange(models.Model):
    """One raised data version of a programme. For a flow saved through the form, also the facility it changed,
    as the check loaded it (its tables, pickled by the server itself): every server process brings its kept
    region up to date from these rows instead of loading the whole programme again (search_cache.snapshot).
    A version without a row, or without the facility's tables, makes a process load the programme anew."""

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="changes")
    version = models.PositiveIntegerField()
    facility_id = models.CharField(max_length=100, blank=True)
    part = models.BinaryField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["programme", "version"], name="one_change_per_version")]
