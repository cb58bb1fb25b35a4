"""The Rust LLM Inference Service (reference document 003): /models, /completions, the kebab-case
/chat/completions, WebSocket /chat/ws, sessions and the built-in web chat page."""

from rest_bridge.families import Family
from rest_bridge.families.rust import openapi, routes, web_ui

FAMILY = Family("rust", (routes.blueprint, web_ui.blueprint), (openapi, web_ui))
