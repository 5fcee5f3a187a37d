"""The Starlette application of ``kneehip serve``.

:func:`create_app` builds it for one model, fixed at start: every endpoint answers from that
model and the request body alone (stateless), reads and writes no file (the page's assets
and the case library are read once, at start), refuses bodies over :data:`MAX_BODY_BYTES`,
and turns every problem into ``{"error": MESSAGE}`` with a 4xx status (the message the CLI
prints after ``error:``), or a 500 without any stack trace.

Examples
--------
>>> from starlette.testclient import TestClient
>>> client = TestClient(create_app("knee_hip_basic"))
>>> r = client.post("/api/diagnose", json={"evidence": {"knee_effusion": "present"}})
>>> r.status_code, r.json()["origins"][0]["name"]
(200, 'knee_pathology')
>>> client.post("/api/diagnose", json={"evidence": {"hip_pian": "present"}}).json()["error"]
"evidence: unknown node 'hip_pian': expected one of ...; did you mean 'hip_pain'?"
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from kneehip_bn._util.jsonclean import json_clean
from kneehip_bn.errors import ImpossibleEvidenceError, KneeHipError
from kneehip_bn.model.spec import ModelSpec, load_spec
from kneehip_bn.serve import api
from kneehip_bn.serve.cases import load_case_library
from kneehip_bn.serve.info import model_info
from kneehip_bn.serve.lanes import RemoteError, SlowLane
from kneehip_bn.serve.openapi import docs_html, openapi_document

__all__ = ["MAX_BODY_BYTES", "create_app"]

#: a request body larger than this is refused with 413
MAX_BODY_BYTES = 32 * 1024

log = logging.getLogger("kneehip_bn.serve")

_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def _bad_request(exc: Exception) -> Response:
    """The 4xx answer to a request the API refuses (too large, bad input, refused remotely)."""
    if isinstance(exc, _TooLarge):
        return _error(413, f"body: expected at most {MAX_BODY_BYTES} bytes, found "
                           f"{exc.args[0]} or more")
    if isinstance(exc, RemoteError):
        return _error(exc.status, exc.message)
    return _error(_status_of(exc), str(exc))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _ServerTiming:
    """ASGI middleware: a ``Server-Timing: app;dur=MS`` header on every response (the time
    from the request's arrival to its answer, as the load benchmark reports it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                dur = f"app;dur={(time.perf_counter() - t0) * 1000:.3f}".encode()
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", dur)]}
            await send(message)

        await self.app(scope, receive, timed)


class _TooLarge(Exception):
    pass


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge(size)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise api.BodyError("body: expected UTF-8 JSON, found bytes that are not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise api.BodyError(f"body: expected JSON, found invalid JSON at line {exc.lineno}, "
                            f"column {exc.colno}: {exc.msg}") from None


def _status_of(exc: Exception) -> int:
    return 422 if isinstance(exc, ImpossibleEvidenceError) else 400


def create_app(model: Any = None, *, cases: list[str] | None = None,
               case_library: bool = True) -> Starlette:
    """The classroom web application for one model.

    Parameters
    ----------
    model : ModelSpec, str, path or None
        The model, fixed for the server's life (``None``: the shipped default; a shipped
        model's name such as ``"knee_hip_basic"``; a model file path).
    cases : list of paths, optional
        Extra case-library YAML files an educator wrote (read once, now).
    case_library : bool
        Also load the shipped case library (the cases tagged with this model's name).

    Returns
    -------
    starlette.applications.Starlette
        Serve it with uvicorn (``kneehip serve`` does).
    """
    spec = model if isinstance(model, ModelSpec) else load_spec(model)
    # quick answers on the event loop, slow ones in a worker process (see .lanes)
    models = api.OverrideCache(spec)
    slow_lane = SlowLane(spec)
    info = model_info(spec)
    library = load_case_library(spec, extra=cases or (), shipped=case_library)
    info["cases"] = len(library["cases"])
    routes = _page_routes(spec, info, library) + _api_routes(models, slow_lane)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await run_in_threadpool(slow_lane.start)  # the first click is not the slow one
        try:
            yield
        finally:
            slow_lane.close()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_ServerTiming)],
                    exception_handlers={HTTPException: _not_found, Exception: _server_error})
    app.state.spec = spec
    app.state.slow_lane = slow_lane  # .close() it when not served through the lifespan
    app.state.cases = len(library["cases"])
    app.state.skipped_cases = library["skipped"]
    return app


def _page_routes(spec: ModelSpec, info: dict[str, Any], library: dict[str, Any]) -> list[Route]:
    """The GET routes: the page and its assets, the model, the cases, the API's description."""
    assets = {name: resources.files(__package__).joinpath("static", name).read_bytes()
              for name in _ASSETS}
    openapi = openapi_document(spec)
    docs = docs_html(openapi)

    def page(name: str):
        async def handler(request: Request) -> Response:
            return Response(assets[name], media_type=_ASSETS[name],
                            headers={"Cache-Control": "no-cache"})
        return handler

    async def get_model(request: Request) -> Response:
        return JSONResponse(info)

    async def get_cases(request: Request) -> Response:
        return JSONResponse(library)

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(openapi)

    async def get_docs(request: Request) -> Response:
        return HTMLResponse(docs)

    return [
        Route("/", page("index.html")),
        Route("/static/app.js", page("app.js")),
        Route("/static/style.css", page("style.css")),
        Route("/api/model", get_model),
        Route("/api/cases", get_cases),
        Route("/openapi.json", get_openapi),
        Route("/docs", get_docs),
    ]


def _api_routes(models: Any, slow_lane: SlowLane) -> list[Route]:
    """The picture and the POST endpoints: quick ones answered here, slow ones in the lane."""
    def endpoint(name: str):
        handler = api.HANDLERS[name]
        slow = name in SLOW_ENDPOINTS

        async def run(request: Request) -> Response:
            try:
                body = await _read_json(request)
                if slow:
                    return JSONResponse(await slow_lane.call(name, body))
                out = handler(models, body)
            except (_TooLarge, KneeHipError, RemoteError) as exc:
                return _bad_request(exc)
            return JSONResponse(json_clean(out))
        return run

    async def graph_svg(request: Request) -> Response:
        try:
            body = await _read_json(request) if request.method == "POST" else {}
            svg = await slow_lane.call("graph", body)
        except (_TooLarge, KneeHipError, RemoteError) as exc:
            return _bad_request(exc)
        return Response(svg, media_type="image/svg+xml")

    routes = [Route("/api/graph.svg", graph_svg, methods=["GET", "POST"])]
    for name in api.HANDLERS:
        routes.append(Route(f"/api/{name}", endpoint(name), methods=["POST"]))
    return routes


async def _not_found(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 405:
        return _error(405, f"{request.url.path}: expected {_method_hint(request.url.path)}, "
                           f"found {request.method}")
    return _error(exc.status_code, f"{request.url.path}: no such page or endpoint; "
                                   "expected one listed at /openapi.json")


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
    return _error(500, "internal error: the server could not answer this request "
                       f"({type(exc).__name__}); the server log has the details")


#: endpoints answered in the worker process (see :mod:`.lanes`)
SLOW_ENDPOINTS = frozenset({"explain", "next-test", "conflict", "what-if"})


def _method_hint(path: str) -> str:
    return "GET" if path in ("/", "/api/model", "/api/cases", "/openapi.json", "/docs") \
        else "POST with a JSON body"
