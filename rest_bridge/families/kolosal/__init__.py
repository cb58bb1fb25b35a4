"""Kolosal Server (reference document 000): /engines, downloads with progress and cancel, and the
API-key administration under /v1/auth. Its /health and JSON /metrics are in the health family."""

from rest_bridge.families import Family
from rest_bridge.families.kolosal import auth, engines, openapi

FAMILY = Family("kolosal", (engines.blueprint, auth.blueprint), (openapi,))
