"""`avrep serve`: a FastAPI app over one or more index folders (JSON API + a self-contained search page).

Safe by default: the model(s) and indexes load once at start-up and are shared by requests; uploads are capped
in bytes and seconds and decoded with avrep's media limits; media are served only for files an index's metadata
names (looked up by clip id: no path from a request reaches the filesystem); every error is JSON
`{"error": "<one line>"}` with a 4xx/5xx status.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from avrep import __version__
from avrep.errors import AvrepError
from avrep.io.media import MediaError, check_limits, probe

log = logging.getLogger("avrep.serve")

MAX_UPLOAD_BYTES = 20 << 20  # a 20 s clip at a generous bitrate
MAX_UPLOAD_SECONDS = 20.0
MAX_K = 100
FILTER_COLUMNS = ("split", "speaker", "word")  # offered on the page when they have few distinct values
MAX_FILTER_VALUES = 200
QUERY_KINDS = ("audio", "video")


class ServeError(Exception):
    """A request the server refuses: HTTP status + one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, " ".join(str(message).split())[:300]


@dataclass
class Served:
    """One index as served: the opened `Index`, its embedder, and its media table (clip id -> file)."""

    name: str
    index: Any  # avrep.index.Index
    embedder: Any  # avrep.embed.Embedder
    media: dict[str, Path] = field(default_factory=dict)
    corpus_root: str | None = None

    def describe(self) -> dict:
        m, meta = self.index.manifest, self.index.metadata
        filters = {}
        for c in FILTER_COLUMNS:
            if c in meta.columns:
                vals = meta[c].dropna().astype(str)
                vals = sorted(v for v in vals.unique() if v)
                if 1 < len(vals) <= MAX_FILTER_VALUES:
                    filters[c] = vals
        return {
            "name": self.name,
            "modality": m.get("modality"),
            "kind": m.get("kind") or "word",
            "n": self.index.ntotal,
            "dim": self.index.dim,
            "model": m.get("model"),
            "checkpoint": m.get("checkpoint"),
            "checkpoint_sha256": m.get("checkpoint_sha256"),
            "corpus_root": self.corpus_root,
            "factory": m.get("factory"),
            "recall_at_k": m.get("recall_at_k"),
            "tuning_query_kind": m.get("tuning_query_kind"),
            "media_files": len(self.media),
            "filters": filters,
        }


def _media_table(meta, base: Path) -> tuple[dict[str, Path], str | None]:
    """clip id -> resolved existing file, for the files an index's metadata names (relative paths: to `base`)."""
    if "clip_id" not in meta.columns or "path" not in meta.columns:
        return {}, None
    out: dict[str, Path] = {}
    for cid, p in zip(meta["clip_id"].astype(str), meta["path"].astype(str)):
        f = Path(p) if os.path.isabs(p) else base / p
        try:
            f = f.resolve(strict=True)
        except OSError:
            continue
        if f.is_file():
            out[cid] = f
    root = os.path.commonpath([str(p.parent) for p in out.values()]) if out else None
    return out, root


class Service:
    """What the app serves: the indexes (by name, in the order given) and their shared embedders."""

    def __init__(
        self,
        index_dirs: list[str | os.PathLike],
        *,
        checkpoint: str | os.PathLike | None = None,
        device: str = "auto",
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_upload_seconds: float = MAX_UPLOAD_SECONDS,
        media_base: str | os.PathLike | None = None,
    ):
        from avrep.embed import Embedder, checkpoint_sha256
        from avrep.index import Index

        if not index_dirs:
            raise AvrepError("avrep serve needs at least one INDEX_DIR")
        self.max_upload_bytes, self.max_upload_seconds = int(max_upload_bytes), float(max_upload_seconds)
        self.indexes: dict[str, Served] = {}
        self._embedders: dict[str, Any] = {}
        base = Path(media_base or os.getcwd())
        for d in index_dirs:
            ix = Index.open(d)
            man = ix.manifest
            ckpt = checkpoint or man.get("checkpoint")
            if not ckpt or not Path(ckpt).exists():
                raise AvrepError(
                    f"{d}: the checkpoint named in its manifest ({man.get('checkpoint')!r}) is not available here "
                    "(give a checkpoint)",
                    param="checkpoint",
                )
            sha = checkpoint_sha256(ckpt)
            if man.get("checkpoint_sha256") and sha != man["checkpoint_sha256"]:
                raise AvrepError(f"{ckpt}: checkpoint hash does not match the one the index {d} was built with")
            if sha not in self._embedders:
                self._embedders[sha] = Embedder.from_checkpoint(ckpt, device=device)
            name = Path(d).resolve().name
            while name in self.indexes:
                name += "_"
            media, root = _media_table(ix.metadata, base)
            self.indexes[name] = Served(name, ix, self._embedders[sha], media, root)
            log.info(
                "serving %s: %s %s, n=%d, %d media files",
                name,
                man.get("modality"),
                man.get("kind"),
                ix.ntotal,
                len(media),
            )

    # --- lookups ---------------------------------------------------------------------------
    def get(self, name: str | None) -> Served:
        if not name:
            return next(iter(self.indexes.values()))
        if name not in self.indexes:
            raise ServeError(404, f"no index named {name!r} (served: {', '.join(self.indexes)})")
        return self.indexes[name]

    def media_path(self, clip_id: str, index: str | None) -> Path:
        """The file of an indexed clip; 404 for anything the metadata does not name."""
        pool = [self.get(index)] if index else list(self.indexes.values())
        for s in pool:
            f = s.media.get(clip_id)
            if f is not None:
                return f
        raise ServeError(404, f"no media for clip {clip_id!r} in the served indexes")

    # --- queries ---------------------------------------------------------------------------
    def check_upload(self, path: Path, what: str):
        """Probe an uploaded file with avrep's media limits and the upload duration cap."""
        try:
            info = probe(path)
            check_limits(info)
        except MediaError as e:
            msg = str(e).replace(str(path), what)
            raise ServeError(413 if "exceeds" in msg else 400, msg) from None
        if not (info.has_audio or info.has_video):
            raise ServeError(400, f"{what}: no audio or video stream")
        if info.duration > self.max_upload_seconds:
            raise ServeError(
                413, f"{what}: {info.duration:.1f}s is longer than the {self.max_upload_seconds:g}s upload limit"
            )
        return info

    def embed_file(self, s: Served, path: Path, use: str, what: str) -> np.ndarray:
        """Embed a file's audio or lips with the index's own model and kind (identity indexes: the face)."""
        man = s.index.manifest
        kind = man.get("kind") or "word"
        try:  # concurrent requests share the model: inference mode only reads the weights
            if man.get("modality") == "identity":
                vec = s.embedder.embed_face(path)
            elif use == "audio":
                vec = s.embedder.embed_audio(path, kind=kind)
            else:
                vec = s.embedder.embed_video(path, kind=kind)
        except (AvrepError, MediaError) as e:
            raise ServeError(422, str(e).replace(str(path), what)) from None
        return np.asarray(vec, dtype=np.float32).reshape(1, -1)

    def search(self, s: Served, vec: np.ndarray, k: int, where: dict | None) -> tuple[list[dict], float]:
        if not 1 <= k <= MAX_K:
            raise ServeError(422, f"k must be between 1 and {MAX_K}, got {k}")
        t0 = time.perf_counter()
        try:
            res = s.index.search(vec, k, where=where or None)
        except AvrepError as e:
            raise ServeError(422, str(e)) from None
        ms = (time.perf_counter() - t0) * 1e3
        rows = res.records()[0]
        for r in rows:
            cid = str(r.get("clip_id", ""))
            r["media_url"] = f"/media/{_quote(cid)}?index={_quote(s.name)}" if cid in s.media else None
            r.pop("path", None)  # server paths stay on the server
        return rows, ms


def _quote(s: str) -> str:

    return quote(s, safe="")


def parse_where_json(where: str | None) -> dict[str, list[str]]:
    """The `where` form field: a JSON object {column: value or [values]} (values OR-ed, columns AND-ed)."""
    if not where:
        return {}
    try:
        obj = json.loads(where)
    except json.JSONDecodeError as e:
        raise ServeError(422, f"where: not JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise ServeError(422, 'where: expected a JSON object such as {"split": "test"}')
    out = {}
    for k, v in obj.items():
        vals = v if isinstance(v, list) else [v]
        if not all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in vals):
            raise ServeError(422, f"where: values of {k!r} must be strings or numbers")
        vals = [str(x) for x in vals]
        if vals:
            out[str(k)] = vals
    return out


def parse_embedding(text: str, dim: int) -> np.ndarray:
    try:
        v = np.asarray(json.loads(text), dtype=np.float32)
    except (json.JSONDecodeError, ValueError, TypeError):
        raise ServeError(422, "embedding: expected a JSON array of numbers") from None
    if v.ndim != 1 or len(v) != dim:
        raise ServeError(422, f"embedding: expected {dim} numbers, got shape {list(v.shape)}")
    if not np.isfinite(v).all():
        raise ServeError(422, "embedding: contains NaN or inf")
    return v[None]


def page_html() -> bytes:
    return resources.files("avrep.serve").joinpath("static/index.html").read_bytes()


def create_app(service: Service):
    """The FastAPI app: `/` (page), `/search`, `/media/{clip_id}`, `/indexes`, `/healthz`, `/docs`."""
    tmp_root = Path(tempfile.mkdtemp(prefix="avrep-serve-"))  # private (0700): uploads live here while embedded

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        shutil.rmtree(tmp_root, ignore_errors=True)

    app = FastAPI(
        title="avrep serve",
        version=__version__,
        description="Audio-visual speech search over avrep indexes: upload audio or video, get the clips that say it.",
        lifespan=lifespan,
    )
    page = page_html()

    def err(status: int, msg: str) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(msg).split())[:300]}, status_code=status)

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, e: ServeError):
        return err(e.status, e.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
        return err(422, f"{loc or 'request'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        return err(e.status_code, e.detail if isinstance(e.detail, str) else "request refused")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception):  # never a traceback to the client
        log.exception("unexpected error on %s", request.url.path)
        return err(500, f"internal error ({type(e).__name__})")

    @app.get("/", include_in_schema=False)
    async def index_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    @app.get("/healthz", summary="Liveness: ok when the indexes and models are loaded")
    async def healthz() -> dict:
        return {"status": "ok", "indexes": len(service.indexes)}

    @app.get("/indexes", summary="Each served index: modality, kind, size, model, corpus root, filters")
    async def indexes() -> list[dict]:
        return [s.describe() for s in service.indexes.values()]

    @app.get("/media/{clip_id}", summary="An indexed clip's file (HTTP range requests supported)")
    async def media(clip_id: str, index: str | None = None):
        f = service.media_path(clip_id, index)
        return FileResponse(f, media_type=_media_type(f), content_disposition_type="inline")

    @app.post("/search", summary="Search an index with an audio/video file, an indexed clip, or an embedding")
    async def search(
        file: UploadFile | None = File(None, description="Audio or video file (the query)"),
        embedding: str | None = Form(None, description="Or: a JSON array of floats (the query embedding)"),
        clip_id: str | None = Form(None, description="Or: an indexed clip to search with ('search with this clip')"),
        use: str = Form("audio", description="Which track of a file/clip to embed: audio or video (the lips)"),
        k: int = Form(10, description=f"Number of results (1..{MAX_K})"),
        where: str | None = Form(None, description='Metadata filter, JSON: {"split": "test", "speaker": ["a", "b"]}'),
        index: str | None = Form(None, description="Index name (GET /indexes); default: the first"),
    ) -> dict:
        s = service.get(index)
        given = [x for x in (file, embedding, clip_id) if x not in (None, "")]
        if len(given) != 1:
            raise ServeError(422, "give exactly one of file, embedding or clip_id")
        if use not in QUERY_KINDS:
            raise ServeError(422, f"use: {use!r} is not one of {', '.join(QUERY_KINDS)}")
        if not 1 <= k <= MAX_K:
            raise ServeError(422, f"k must be between 1 and {MAX_K}, got {k}")
        cond = parse_where_json(where)
        t0 = time.perf_counter()
        source: dict[str, Any]
        if embedding not in (None, ""):
            vec = parse_embedding(embedding, s.index.dim)
            source = {"type": "embedding"}
        elif clip_id not in (None, ""):
            f = service.media_path(clip_id, s.name if clip_id in s.media else None)
            vec = await run_in_threadpool(service.embed_file, s, f, use, f"clip {clip_id}")
            source = {"type": "clip", "clip_id": clip_id, "use": use}
        else:
            tmp = tmp_root / f"upload-{os.getpid()}-{threading.get_ident()}-{time.perf_counter_ns()}"
            name = Path(file.filename or "upload").name[:100]
            try:
                n = 0
                with open(tmp, "wb") as out:
                    while chunk := await file.read(1 << 20):
                        n += len(chunk)
                        if n > service.max_upload_bytes:
                            raise ServeError(
                                413, f"{name}: larger than the {service.max_upload_bytes >> 20} MiB upload limit"
                            )
                        out.write(chunk)
                if n == 0:
                    raise ServeError(400, f"{name}: empty file")
                info = await run_in_threadpool(service.check_upload, tmp, name)
                if use == "audio" and not info.has_audio:
                    raise ServeError(422, f"{name}: no audio stream (search with its video instead)")
                if use == "video" and not info.has_video:
                    raise ServeError(422, f"{name}: no video stream (search with its audio instead)")
                vec = await run_in_threadpool(service.embed_file, s, tmp, use, name)
            finally:
                tmp.unlink(missing_ok=True)
            source = {"type": "file", "filename": name, "use": use, "duration_s": round(info.duration, 3)}
        embed_ms = (time.perf_counter() - t0) * 1e3
        rows, search_ms = await run_in_threadpool(service.search, s, vec, k, cond)
        return {
            "index": s.name,
            "k": k,
            "where": cond,
            "query": source,
            "timings": {"embed_ms": round(embed_ms, 2), "search_ms": round(search_ms, 3)},
            "results": rows,
        }

    return app


def _media_type(f: Path) -> str:
    return {
        ".mp4": "video/mp4",
        ".m4v": "video/mp4",
        ".webm": "video/webm",
        ".mov": "video/quicktime",
        ".mpg": "video/mpeg",
        ".mpeg": "video/mpeg",
        ".wav": "audio/wav",
        ".mp3": "audio/mpeg",
        ".m4a": "audio/mp4",
        ".flac": "audio/flac",
        ".ogg": "audio/ogg",
    }.get(f.suffix.lower(), "application/octet-stream")


def serve(
    index_dirs: list[str | os.PathLike],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_upload_seconds: float = MAX_UPLOAD_SECONDS,
) -> None:
    """Load the indexes and model(s) once, then serve until interrupted."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the search page and API are reachable from other machines (no authentication)", host)
    service = Service(
        index_dirs,
        checkpoint=checkpoint,
        device=device,
        max_upload_bytes=max_upload_bytes,
        max_upload_seconds=max_upload_seconds,
    )
    app = create_app(service)
    log.info("avrep serve: http://%s:%d/ (API docs at /docs)", host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
