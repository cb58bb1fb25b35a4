"""FoundryLocalAPI (reference document 004): everything under /iblink/v1/foundry-local."""

from rest_bridge.families import Family
from rest_bridge.families.foundry import monitoring, openapi, routes

FAMILY = Family("foundry", (routes.blueprint, monitoring.blueprint), (openapi, monitoring))
