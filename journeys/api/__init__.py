"""The journeys and events endpoints of the API, under /api/v1/ (journeys/api_urls.py)."""
