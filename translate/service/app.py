"""The HTTP API of `translate serve` (FastAPI). create_app only assembles: the routers, the shared state in
app.state, the error handlers and the lifespan that drains the workers. Every model has one Worker thread;
handlers only plan, queue and wait.

  libre.py   LibreTranslate: POST /translate, /detect, GET /languages, /frontend/settings
  routes.py  GET / (the page), POST /v1/translate, GET /v1/models, /health, /metrics
  dispatch.py  pick a model, plan, queue on its worker, wait;  requests.py  read and check request fields
  state.py   Served and State (app.state.service);  access.py  API keys and limits;  detect.py  Lingua
  CORS       config.cors_origins (--cors-origins): none by default, "*" is LibreTranslate's behaviour
  guard.py   the browser policy (Host and Origin checks; the CORS origins may POST), security headers, the
             one handler of 500s
  server.py  uvicorn under bounds: read timeout, connection limit, drain period

Errors are JSON {"error": message} with 400 / 403 / 404 / 408 / 413 / 415 / 503 (+ Retry-After) / 504, never
a traceback; a 500 is a bug, logged once. A client that disconnects while it waits has its sentences dropped
from the running batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from translate.service import libre, routes
from translate.service.access import Access
from translate.service.config import ServerConfig
from translate.service.detect import Detector
from translate.service.downloads import Downloads
from translate.service.guard import Guard, allowed_hosts
from translate.service.requests import ApiError
from translate.service.state import Served, State, languages_of, state_of

__all__ = ["Served", "create_app"]
log = logging.getLogger(__name__)
CORS_MAX_AGE = 20 * 24 * 3600  # seconds a browser may cache a preflight's answer (LibreTranslate's 20 days)


@asynccontextmanager
async def lifespan(app: FastAPI):
    state = app.state.service
    # Lingua loads its models on the first detection (seconds): load them now, beside the first requests
    warm = threading.Thread(target=state.detector.detect, args=("warm up",), daemon=True)
    warm.start()
    yield
    state.counters.draining = True  # uvicorn has stopped accepting and finished the open requests
    for s in state.served.values():
        await asyncio.to_thread(s.worker.stop)
    state.downloads.close()


async def api_error(request: Request, e: ApiError):
    state_of(request).counters.count(e.status)
    return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)


async def http_error(request: Request, e: HTTPException):
    state_of(request).counters.count(e.status_code)
    return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=e.headers)


def create_app(served: dict[str, Served], config: ServerConfig) -> FastAPI:
    app = FastAPI(title="translate", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    detector = Detector(languages_of(served))
    app.state.service = State(served, config, Access(config), detector, Downloads(config.file_ttl))
    if config.cors_origins:  # answers preflights (OPTIONS) and adds Access-Control-* to the answers
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                           max_age=CORS_MAX_AGE)  # fmt: skip
    app.mount("/static", StaticFiles(directory=str(routes.STATIC)), name="static")
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    # outermost (added last): the Host/Origin policy before CORS and every route; the one handler of 500s
    app.add_middleware(Guard, hosts=allowed_hosts(config.host, config.allowed_hosts),
                       origins=frozenset(config.cors_origins))  # fmt: skip
    app.include_router(libre.router)
    app.include_router(routes.router)
    return app
