"""The journey pages (journeys/views.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
