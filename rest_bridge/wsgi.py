"""WSGI entry point for gunicorn: `gunicorn 'rest_bridge.wsgi:app'` (config from the environment)."""

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig

app = create_app(BridgeConfig.from_env())
