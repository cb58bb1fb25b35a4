"""Health and metrics on the paths that several documents share: /health (one superset body with
Kolosal's, Kai's per-service and the Rust service's fields), /readiness, /metrics (Kolosal's JSON
or Prometheus text, by Accept), /metrics/system and /metrics/completion.

Kai (reference document 002) documents nothing else of its own beyond the OpenAI routes and its
config file, so it has no folder: its /health is served here."""

from rest_bridge.families import Family
from rest_bridge.families.health import routes

FAMILY = Family("health", (routes.blueprint,), (routes,))
