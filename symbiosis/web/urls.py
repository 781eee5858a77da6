"""URL patterns. Every view carries an access rule (access.py); the access sweep in tests/test_web_access.py
walks these patterns and fails on one without a rule."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("public/<slug:slug>.json", views.public_json, name="public_json"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("invite/<str:token>/", views.invite_accept, name="invite"),
    path("dashboard/", views.dashboard, name="dashboard"),
    # firms
    path("facilities/new/", views.facility_new, name="facility_new"),
    path("facilities/<int:pk>/", views.facility_detail, name="facility"),
    path("facilities/<int:pk>/edit/", views.facility_edit, name="facility_edit"),
    path("facilities/<int:pk>/flows/new/<str:step>/", views.flow_new, name="flow_new"),
    path("flows/<int:pk>/edit/", views.flow_edit, name="flow_edit"),
    path("flows/<int:pk>/partners/", views.partners, name="partners"),
    path("flows/<int:pk>/interest/", views.interest, name="interest"),
    path("flows/<int:pk>/quality/new/", views.quality_new, name="quality_new"),
    path("quality/<int:pk>/edit/", views.quality_edit, name="quality_edit"),
    path("quality/<int:pk>/delete/", views.quality_delete, name="quality_delete"),
    path("facilities/<int:pk>/permits/new/", views.permit_new, name="permit_new"),
    path("permits/<int:pk>/edit/", views.permit_edit, name="permit_edit"),
    path("permits/<int:pk>/delete/", views.permit_delete, name="permit_delete"),
    path("upload/", views.upload, name="upload"),
    path("firm/settings/", views.firm_settings, name="firm_settings"),
    # agency and facilitators
    path("programme/facilities/", views.facilities_all, name="facilities_all"),
    path("programme/invitations/", views.invitations, name="invitations"),
    path("programme/interests/", views.interests, name="interests"),
    path("programme/interests/<int:pk>/introduce/", views.introduce, name="introduce"),
    path("programme/introductions/", views.introductions, name="introductions"),
    path("programme/introductions/<int:pk>/status/", views.introduction_status, name="introduction_status"),
    path("programme/runs/", views.runs, name="runs"),
    path("programme/runs/<int:pk>/", views.run_detail, name="run"),
    path("programme/runs/<int:pk>/status.json", views.run_status, name="run_status"),
    path("programme/runs/<int:pk>/files/<str:name>", views.run_file, name="run_file"),
    path("programme/audit/", views.audit, name="audit"),
]
