"""The OpenAI Responses API (`/v1/responses`): create (JSON or SSE), retrieve and delete, with
function tools, `text.format` (JSON mode, JSON schema) and `previous_response_id`. Stored responses
are sessions of the server's session store (`resp_<x>` is the session `response-<x>`)."""

from rest_bridge.families import Family
from rest_bridge.families.openai_responses import openapi, routes

FAMILY = Family("openai_responses", (routes.blueprint,), (openapi,))
