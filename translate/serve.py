"""`translate serve`: the HTTP translation service (LibreTranslate API, /v1/translate, a web page at /).

  translate serve                                     the newest runs/**/checkpoints/best.pt as "default"
  translate serve --model bible=runs/a/best.pt --model wmt=runs/b/best.pt --port 5000
  translate serve --model fast=exports/ct2-int8       a `translate export` directory: CTranslate2 decodes
  make serve ARGS="--model default=runs/<run>/checkpoints/best.pt"

A checkpoint is decoded by our engine with continuous batching (--quantize int8: PyTorch dynamic int8); a
CTranslate2 directory by CTranslate2, which batches what is queued (continuous batching needs our models'
step interface), and without alignments.

LibreTranslate's access options, all off by default: --api-keys FILE, --require-api-key, --req-limit,
--batch-limit, --char-limit, --cors-origins (none by default; '*' as LibreTranslate); files: --max-file-bytes,
--file-ttl (translate/service/README.md). Bounds against hostile clients: --read-timeout, --max-connections,
--max-body-bytes, --max-beam, --max-alignment-cells, --allowed-host (translate/service/README.md).

It listens on 127.0.0.1 unless --host says otherwise. SIGTERM (or Ctrl-C) makes /health say "draining" for
--drain-seconds, then stops accepting connections, lets the running requests finish, and exits. Errors in the
options or checkpoints are one line, `translate serve: error: ...`, exit status 2. The server defaults live
in translate.service.ServerConfig, the decoding defaults in translate.search.SearchConfig.
"""

from __future__ import annotations

from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import argparse
import logging
import sys

from translate.device import DeviceError
from translate.engines import QUANTIZE, EngineError, engine_device
from translate.models.checkpoint import CheckpointError, newest_best_checkpoint
from translate.search import SearchConfig
from translate.search.flags import add_search_flags, flag_error, search_from_args
from translate.service import ServerConfig, ServiceConfig, Translator
from translate.service.config import KV_CACHES, SCHEDULERS

PROG = "translate serve"
# the server's decoding defaults (a request may change them)
SEARCH_FIELDS = ("beam_size", "stopping", "alpha", "batch_tokens", "no_repeat_ngram_size",
                 "repetition_penalty", "repeat_guard")


# ServerConfig field -> (help, choices); each is the flag --field-name with ServerConfig's default
SERVER_FLAGS = {
    "host": ("address to listen on", None),
    "port": ("port", None),
    "char_limit": ("characters per request; more -> 413", None),
    "max_body_bytes": ("bytes per request body; more -> 413", None),
    "max_beam": ("widest beam a request may ask for", None),
    "max_alignment_cells": ("alignment weights per request; more -> 413", None),
    "max_queue": ("sentences waiting; more -> 503", None),
    "timeout": ("seconds per request; then 504", None),
    "read_timeout": ("seconds to receive a request; then 408", None),
    "max_connections": ("open connections; more -> 503", None),
    "drain_seconds": ("on SIGTERM, seconds /health says draining", None),
    "scheduler": ("how the model worker batches", SCHEDULERS),
    "kv_cache": ("decoder self-attention cache", KV_CACHES),
    "block_size": ("tokens per paged-cache block", None),
    "req_limit": ("requests per minute per API key or client address, a batch costing its length; more -> "
                  "429 (0: no limit)", None),
    "batch_limit": ("texts in one request's q list; more -> 413 (0: no limit)", None),
    "api_keys": ("a file of API keys, one a line: KEY [REQ_LIMIT [CHAR_LIMIT]] (empty: no keys)", None),
    "max_file_bytes": ("POST /translate_file: a bigger file is refused", None),
    "file_ttl": ("seconds a translated file can be downloaded", None),
}
# LibreTranslate's switches and lists, with ServerConfig's defaults
ACCESS_FLAGS = ("require_api_key", "cors_origins")


def add_server_flag(p: argparse.ArgumentParser, d: ServerConfig, field: str) -> None:
    text, choices = SERVER_FLAGS[field]
    default = getattr(d, field)
    p.add_argument("--" + field.replace("_", "-"), type=type(default), default=default, choices=choices,
                   help=f"{text} (default: {default:g})" if isinstance(default, float) else
                        f"{text} (default: {default})")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Serve trained checkpoints over HTTP.")
    d = ServerConfig()
    p.add_argument("--model", "-m", action="append", default=[], metavar="NAME=PATH",
                   help="a checkpoint, or a `translate export` CTranslate2 directory, to serve under "
                        "NAME (repeat for several; default: the newest runs/**/checkpoints/best.pt as "
                        "'default')")  # fmt: skip
    p.add_argument("--quantize", choices=QUANTIZE, default="none",
                   help="checkpoints: none or int8 (PyTorch dynamic int8, CPU; default: none)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    add_search_flags(p, SEARCH_FIELDS, prefix="default")  # per request unless the request says
    n = ServiceConfig.max_src_len
    p.add_argument("--max-src-len", type=int, default=n,
                   help=f"longer sentences are cut into parts (default: {n})")  # fmt: skip
    for field in SERVER_FLAGS:
        add_server_flag(p, d, field)
    p.add_argument("--allowed-host", dest="allowed_hosts", action="append", default=[], metavar="NAME",
                   help="a Host name to answer besides the loopback ones (repeat; '*' = any; default: "
                        "loopback names only on a loopback address, any name otherwise)")  # fmt: skip
    p.add_argument("--require-api-key", action="store_true",
                   help="a request without an API key is a 400 (needs --api-keys)")  # fmt: skip
    p.add_argument("--cors-origins", type=lambda s: tuple(o.strip() for o in s.split(",") if o.strip()),
                   default=d.cors_origins, metavar="ORIGIN[,ORIGIN]",
                   help="origins browsers may call this server from; * = any, as LibreTranslate (default: "
                        "none: a page on another site cannot read the answers)")  # fmt: skip
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: 0 = torch's choice)")
    return p


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, ServerConfig, SearchConfig, ServiceConfig]:
    p = build_parser()
    args = p.parse_args(argv)
    for spec in args.model:
        if "=" not in spec or not spec.split("=", 1)[0] or not spec.split("=", 1)[1]:
            p.error(f"--model {spec!r}: expected NAME=PATH")
    names = [spec.split("=", 1)[0] for spec in args.model]
    if len(set(names)) != len(names):
        p.error(f"--model: a name is given twice ({', '.join(names)})")
    try:
        server = ServerConfig(**{field: getattr(args, field) for field in (*SERVER_FLAGS, *ACCESS_FLAGS)},
                              allowed_hosts=tuple(args.allowed_hosts))  # fmt: skip
        search = search_from_args(args, SEARCH_FIELDS)
        service = ServiceConfig(max_src_len=args.max_src_len)
    except ValueError as e:  # messages start with the field name: show the option
        p.error(flag_error(e))
    return args, server, search, service


def load_served(specs: list[list[str]], device, server: ServerConfig, search: SearchConfig,
                service: ServiceConfig, quantize: str = "none", threads: int = 0) -> dict:
    """NAME=PATH pairs -> {name: Served}: a directory is a CTranslate2 export (static batching), a file a
    checkpoint (the server's scheduler). Raises CheckpointError / EngineError naming the path."""
    from dataclasses import replace
    from pathlib import Path

    from translate.service.state import Served
    from translate.service.worker import Worker

    served = {}
    for name, path in specs:
        if Path(path).is_dir():
            if quantize != "none":
                raise EngineError(f"{path}: --quantize applies to checkpoints; a CTranslate2 directory is "
                                  "quantized when exported (translate export --quantization)")  # fmt: skip
            tr = Translator.load(path, device, service, engine="ct2", threads=threads)
            static = server if server.scheduler != "continuous" else replace(server, scheduler="static")
            worker = Worker(None, static, engine=tr.engine)
            logging.info("model %s: %s (%s -> %s), scheduler %s", name, tr.describe(), tr.langs.src,
                         tr.langs.tgt, static.scheduler)  # fmt: skip
        else:
            tr = Translator.load(path, device, service, quantize=quantize)
            worker = Worker(tr.model, server)
            logging.info("model %s: %s (%s -> %s) from %s", name, tr.summary(), tr.langs.src,
                         tr.langs.tgt, path)  # fmt: skip
        served[name] = Served(name, tr, worker.start(), search)
    return served


def main(argv: list[str] | None = None) -> int:
    args, server, search, service = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    from translate.service.access import ApiKeysError
    from translate.service.app import create_app
    from translate.service.server import DrainingServer, uvicorn_config

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        device = engine_device(args.device, args.quantize)
        specs = [s.split("=", 1) for s in args.model] or [["default", str(newest_best_checkpoint())]]
        served = load_served(specs, device, server, search, service, args.quantize, args.threads)
    except (CheckpointError, DeviceError, EngineError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    try:
        app = create_app(served, server)
    except ApiKeysError as e:
        print(f"{PROG}: error: --api-keys: {e}", file=sys.stderr)
        return 2
    logging.info("scheduler %s, %s KV cache, allocator %s; listening on http://%s:%d", server.scheduler,
                 server.kv_cache, allocator.describe(), server.host, server.port)  # fmt: skip
    DrainingServer(uvicorn_config(app, server), app.state.service.counters, server.drain_seconds).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
