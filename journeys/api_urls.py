"""The journeys and events endpoints, under /api/v1/ (journeys/api.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
