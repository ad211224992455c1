"""`avrep serve`: the JSON API and search page over index folders (FastAPI + uvicorn)."""

from avrep.errors import require

# the web stack is the [serve] extra (setup.cfg); faiss (the indexes served) is [cpu] or [gpu]
require(("fastapi", "uvicorn", "python_multipart"), "serve", "avrep serve")

from avrep.serve.app import Service, create_app, serve  # noqa: E402

__all__ = ["Service", "create_app", "serve"]
