"""The OpenAI API (chat completions, completions, models, embeddings), with the extras the
reference documents add (Impetus's `conversation_id`, `use_cache`, `performance_metrics`)."""

from rest_bridge.families import Family
from rest_bridge.families.openai import openapi, routes

FAMILY = Family("openai", (routes.blueprint,), (openapi,))
