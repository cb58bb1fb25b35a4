"""Impetus LLM Server (reference document 001): /api/models/*, /api/hardware/*, /api/health/*,
the model benchmark and the socket.io events. Its OpenAI extras live in the openai family."""

from rest_bridge.families import Family
from rest_bridge.families.impetus import model_routes, monitoring, openapi, socketio

FAMILY = Family("impetus", (model_routes.blueprint, monitoring.blueprint), (openapi, monitoring),
                setup=socketio.setup)
