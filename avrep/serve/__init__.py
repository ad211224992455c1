"""`avrep serve`: the JSON API and search page over index folders (FastAPI + uvicorn)."""

from avrep.serve.app import Service, create_app, serve

__all__ = ["Service", "create_app", "serve"]
