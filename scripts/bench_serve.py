"""Benchmark `translate serve`: concurrent clients on 127.0.0.1, four schedulers, and the KV cache alone.

    .venv/bin/python scripts/bench_serve.py --checkpoint runs/default/checkpoints/best.pt
    .venv/bin/python scripts/bench_serve.py --clients 1 8 --seconds 10 --parts http     # a quick look
    .venv/bin/python scripts/bench_serve.py --parts soak --soak-seconds 600              # hostile clients
    -> reports/bench_serve.json and reports/bench_serve.md

HTTP part: for each scheduler (one request at a time; static batching of what is queued; continuous
batching with the contiguous cache; continuous batching with the paged cache) and each client count, a
fresh server (`translate serve`, a subprocess, --threads torch threads) is started on a free 127.0.0.1
port, warmed up, and N client threads each send one test verse per POST /v1/translate, the next as soon
as the last is answered, for --seconds. Reported: sentences/s and target tokens/s (requests answered 200
within the window), latency p50/p95/p99, 503s and other failures, the server's peak RSS (VmHWM) and, from
/metrics sampled every 0.25 s, the largest number of paged KV blocks in use and the largest queue.
Cache part (no HTTP, after a warm-up of both): the same test verses through a ContinuousDecoder,
contiguous vs paged cache, joining a running batch of --cache-running sentences, for each of --cache-beams,
each pair run --repeats times in alternating order (step time: the median): per step the
K/V bytes copied (contiguous: torch.cat on append, index_select on reorder, padding on join; paged: slot
writes plus copy-on-write), the bytes the CPU attention path gathers from the blocks, step time, and
allocated vs used self-attention cache memory (used: slots holding keys a row reads; the paged cache holds
a shared beam prefix once).
Soak part: one server (the default continuous, paged scheduler), --soak-clients clients for --soak-seconds;
each request is ordinary (a test verse, the default settings) or, with probability --hostile-share, one of
HOSTILE's kinds (bad numbers, bad bodies, alignment requests, clients that leave, partial headers, new
search settings on every request). Reported: requests by kind and status (goal: no 500), the ordinary
requests' p50/p99 against a run of --soak-baseline-seconds on a fresh server without the hostile share, and
the server's RSS every 10 s (goal: the last minute's within 10% of the second minute's).
"""

from __future__ import annotations

# ruff: noqa: E402 (allocator.preload() comes before the other imports)
from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import argparse
import gzip
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from translate.files import write_json, write_text  # noqa: E402
from translate.machine import describe_cpu, peak_rss_mib  # noqa: E402
from translate.search import SearchConfig  # noqa: E402
from translate.service import ServerConfig  # noqa: E402

SCHEDULERS = {  # label -> serve flags
    "one at a time": ["--scheduler", "sequential"],
    "static batching": ["--scheduler", "static"],
    "continuous, contiguous cache": ["--scheduler", "continuous", "--kv-cache", "contiguous"],
    "continuous, paged cache": ["--scheduler", "continuous", "--kv-cache", "paged"],
}


def test_verses(n: int) -> list[str]:
    with gzip.open(ROOT / "data/bible_es_en/test.tsv.gz", "rt", encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        col = header.index("es")
        return [line.rstrip("\n").split("\t")[col] for _, line in zip(range(n), f)]


def post(url: str, body: dict, timeout: float = 300.0) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {}
    except OSError:
        return 0, {}


def metrics(url: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {line.split("{")[0]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("translate_") and 'model="bench"' in line}  # fmt: skip


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def start_server(args, flags: list[str]) -> tuple[subprocess.Popen, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cmd = [sys.executable, "-m", "translate.cli", "serve", "--model", f"bench={args.checkpoint}",
           "--port", str(port), "--threads", str(args.threads), "--beam", str(args.beam), *flags]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench_serve: the server exited: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("bench_serve: the server did not start within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (the server drains), then kill after 60 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_cell(args, label: str, flags: list[str], clients: int, verses: list[str]) -> dict:
    proc, url = start_server(args, flags)
    try:
        for v in verses[:4]:  # warm-up
            post(url + "/v1/translate", {"q": v})
        records: list[tuple[float, float, int, int]] = []  # (start, end, status, target tokens)
        lock = threading.Lock()
        t0 = time.monotonic()
        stop_at = t0 + args.seconds

        def client(c: int) -> None:
            i = c * 7919
            while time.monotonic() < stop_at:
                text = verses[i % len(verses)]
                i += 1
                start = time.monotonic()
                status, body = post(url + "/v1/translate", {"q": text})
                tokens = 0
                if status == 200:
                    tokens = sum(u["hypotheses"][0]["length"] + 1 for u in body["translations"]["units"])
                with lock:
                    records.append((start, time.monotonic(), status, tokens))

        samples: list[dict] = []
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append(metrics(url))
            time.sleep(0.25)
        for t in threads:
            t.join()
        rss = peak_rss_mib(proc.pid)
    finally:
        stop_server(proc)
    done = [r for r in records if r[2] == 200 and r[1] <= stop_at]
    lat = [1000 * (r[1] - r[0]) for r in done]
    return {
        "scheduler": label, "clients": clients, "seconds": args.seconds,
        "sentences_per_s": len(done) / args.seconds, "tokens_per_s": sum(r[3] for r in done) / args.seconds,
        "p50_ms": percentile(lat, 0.5), "p95_ms": percentile(lat, 0.95), "p99_ms": percentile(lat, 0.99),
        "answered": len(done), "rejected_503": sum(r[2] == 503 for r in records),
        "failed": sum(r[2] not in (200, 503) for r in records), "peak_rss_mb": rss,
        "kv_blocks_max": max((s.get("translate_kv_blocks_in_use", 0) for s in samples), default=0),
        "queue_max": max((s.get("translate_queue_depth", 0) for s in samples), default=0),
        "active_max": max((s.get("translate_active_sequences", 0) for s in samples), default=0),
    }  # fmt: skip


def cache_part(args, verses: list[str]) -> list[dict]:
    """Per-step copy volume and memory of the contiguous vs the paged self-attention cache."""
    import torch

    from translate.attention.cache import KVCache
    from translate.models.checkpoint import load_model
    from translate.search.continuous import ContinuousDecoder

    torch.set_num_threads(args.threads)
    model, tok, _ = load_model(args.checkpoint)
    srcs = [tok.encode(v, "src") for v in verses[: args.cache_sentences]]
    copied = {"bytes": 0}
    append, reorder, join = KVCache.append, KVCache.reorder, KVCache.join

    def size(cache) -> int:
        return 2 * cache.k.numel() * cache.k.element_size() if cache.k is not None else 0

    def counting_append(self, k, v, mask=None):  # self-attention caches only append
        out = append(self, k, v, mask)
        self.bench_self = True
        copied["bytes"] += size(self)  # torch.cat made new k and v
        return out

    def counting_reorder(self, index):
        out = reorder(self, index)
        copied["bytes"] += size(self) if getattr(self, "bench_self", False) else 0  # index_select: new k, v
        return out

    def counting_join(self, other, rows):
        out = join(self, other, rows)
        copied["bytes"] += size(self) if getattr(self, "bench_self", False) else 0  # padded and concatenated
        return out

    def run(paged: bool, beam: int, running: int) -> dict:
        """One pass: the sentences through a ContinuousDecoder, `running` at a time."""
        search = SearchConfig(beam_size=beam)
        decoder = ContinuousDecoder(model, search, paged=paged, block_size=args.block_size)
        pending, steps, step_time, alloc_used, waste = list(enumerate(srcs)), 0, 0.0, [], []
        copied["bytes"], gathered, written = 0, 0, 0
        while pending or decoder.busy:
            while pending and decoder.running + len(decoder.waiting) < running:
                decoder.add(*pending.pop(0))
            t = time.perf_counter()
            decoder.step()
            step_time += time.perf_counter() - t
            steps += 1
            if decoder.state is not None:
                alloc_used.append(decoder.kv_memory())
                if paged:
                    cache = decoder.state["self_caches"]
                    per_slot = decoder.pool.bytes_per_block() // decoder.pool.block_size
                    gathered += sum(len(t) for t in cache.tables) * decoder.pool.block_size * per_slot
                    written += len(cache) * per_slot
                    waste.append(cache.waste() / max(1, len(cache)))
        copy = decoder.pool.copied_tokens * per_slot + written if paged else copied["bytes"]
        n = max(1, len(alloc_used))
        return {
            "cache": "paged" if paged else "contiguous", "beam": beam, "running": running,
            "sentences": len(srcs), "steps": steps, "ms_per_step": 1000 * step_time / steps,
            "copied_kb_per_step": copy / steps / 1024, "gathered_kb_per_step": gathered / steps / 1024,
            "allocated_kb_mean": sum(a for a, _ in alloc_used) / n / 1024,
            "used_kb_mean": sum(u for _, u in alloc_used) / n / 1024,
            "waste_slots_per_row_mean": sum(waste) / len(waste) if waste else None,
            "block_size": args.block_size if paged else None,
        }  # fmt: skip

    for paged in (False, True):  # warm-up: thread pools, allocator, both code paths
        run(paged, max(args.cache_beams), 4)
    rows = []
    KVCache.append, KVCache.reorder, KVCache.join = counting_append, counting_reorder, counting_join
    try:
        for beam in args.cache_beams:
            for running in args.cache_running:
                times: dict[bool, list[float]] = {False: [], True: []}
                for rep in range(args.repeats):  # alternating order, median: fair on a busy machine
                    for paged in ((False, True) if rep % 2 == 0 else (True, False)):
                        result = run(paged, beam, running)
                        times[paged].append(result["ms_per_step"])
                        if rep == 0:
                            rows.append(result)
                for row in rows[-2:]:
                    row["ms_per_step"] = statistics.median(times[row["cache"] == "paged"])
                    row["ms_per_step_runs"] = times[row["cache"] == "paged"]
                print(json.dumps(rows[-2:]), flush=True)
    finally:
        KVCache.append, KVCache.reorder, KVCache.join = append, reorder, join
    return rows


HTTP_COLUMNS = [("scheduler", "{}"), ("clients", "{}"), ("sent/s", "{:.2f}"), ("tok/s", "{:.0f}"),
                ("p50 ms", "{:.0f}"), ("p95 ms", "{:.0f}"), ("p99 ms", "{:.0f}"), ("503", "{}"),
                ("failed", "{}"),
                ("peak RSS MB", "{:.0f}"), ("KV blocks max", "{:.0f}"), ("queue max", "{:.0f}")]
HTTP_KEYS = ["scheduler", "clients", "sentences_per_s", "tokens_per_s", "p50_ms", "p95_ms", "p99_ms",
             "rejected_503", "failed", "peak_rss_mb", "kv_blocks_max", "queue_max"]
CACHE_COLUMNS = [("beam", "{}"), ("running", "{}"), ("cache", "{}"), ("ms/step (median)", "{:.1f}"),
                 ("K/V copied KB/step", "{:.0f}"),
                 ("gathered KB/step", "{:.0f}"), ("allocated KB", "{:.0f}"), ("used KB", "{:.0f}"),
                 ("waste slots/row", "{:.1f}")]
CACHE_KEYS = ["beam", "running", "cache", "ms_per_step", "copied_kb_per_step", "gathered_kb_per_step",
              "allocated_kb_mean",
              "used_kb_mean", "waste_slots_per_row_mean"]  # fmt: skip


def raw(url: str, data: bytes, hold: float = 0.0, timeout: float = 120.0) -> int:
    """Send bytes on a new connection to the server at `url`; hold > 0: close after that many seconds without
    reading (a client that leaves) -> the status answered (0: none)."""
    host, port = url.rsplit("/", 1)[1].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(data)
            if hold > 0:
                time.sleep(hold)
                return 0
            reply = sock.recv(64)
    except OSError:
        return 0
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def http_bytes(body: bytes, content_type: str = "application/json") -> bytes:
    return (b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (content_type.encode(), len(body), body))  # fmt: skip


def send_json(url: str, text: str) -> int:
    return raw(url, http_bytes(text.encode()))


HOSTILE = {  # kind -> (rng, url, verse) -> status (0 = no answer expected or none)
    "alpha NaN": lambda r, u, v: send_json(u, json.dumps({"q": v})[:-1] + ', "alpha": NaN}'),
    "alpha 1e308": lambda r, u, v: post(u + "/v1/translate", {"q": v, "alpha": 1e308})[0],
    "5000-digit int": lambda r, u, v: send_json(u, '{"q": "x", "beam": ' + "9" * 5000 + "}"),
    "deep JSON": lambda r, u, v: send_json(u, '{"q": ' + "[" * 5000 + "]" * 5000 + "}"),
    "random bytes": lambda r, u, v: raw(u, http_bytes(bytes(r.randrange(256) for _ in range(200)))),
    "model as list": lambda r, u, v: post(u + "/v1/translate", {"q": v, "model": ["bench"]})[0],
    "alternatives ²": lambda r, u, v: raw(u, http_bytes(json.dumps(
        {"q": v, "source": "es", "target": "en", "alternatives": "\u00b2"}).encode()).replace(
        b"/v1/translate", b"/translate")),
    "alignment": lambda r, u, v: post(u + "/v1/translate", {"q": " ".join([v] * r.randint(1, 12)),
                                                             "alignment": True, "beam": 4, "nbest": 4})[0],
    "client leaves": lambda r, u, v: raw(u, http_bytes(json.dumps({"q": " ".join([v] * 8)}).encode()),
                                         hold=r.uniform(0.05, 1.0)),
    "partial headers": lambda r, u, v: raw(u, b"POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
    "new settings": lambda r, u, v: post(u + "/v1/translate", {"q": v, "alpha": r.uniform(0, 2),
                                                                "beam": r.randint(1, 8)})[0],
}  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak_run(args, verses: list[str], seconds: float, hostile_share: float) -> dict:
    """One fresh server, --soak-clients clients for `seconds`: statuses by kind, ordinary latencies, RSS."""
    proc, url = start_server(args, [])
    counts: dict[str, dict[int, int]] = {}
    ordinary: list[float] = []
    lock = threading.Lock()
    try:
        for v in verses[:4]:  # warm-up
            post(url + "/v1/translate", {"q": v})
        stop_at = time.monotonic() + seconds

        def client(c: int) -> None:
            rng = random.Random(c)
            kinds = list(HOSTILE)
            while time.monotonic() < stop_at:
                verse = verses[rng.randrange(len(verses))]
                start = time.monotonic()
                if rng.random() < hostile_share:
                    kind = kinds[rng.randrange(len(kinds))]
                    status = HOSTILE[kind](rng, url, verse)
                else:
                    kind, status = "ordinary", post(url + "/v1/translate", {"q": verse})[0]
                with lock:
                    counts.setdefault(kind, {}).setdefault(status, 0)
                    counts[kind][status] += 1
                    if kind == "ordinary" and status == 200:
                        ordinary.append(1000 * (time.monotonic() - start))

        threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(args.soak_clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        rss = []
        while time.monotonic() < stop_at:
            rss.append((round(time.monotonic() - t0), rss_mb(proc.pid)))
            time.sleep(max(0.0, min(10.0 - (time.monotonic() - t0) % 10.0, stop_at - time.monotonic())))
        rss.append((round(time.monotonic() - t0), rss_mb(proc.pid)))
        for t in threads:  # requests under way at the end finish (each within the server's timeout)
            t.join(ServerConfig.timeout + 10)
        final = metrics(url)
    finally:
        stop_server(proc)
    minute = [m for t, m in rss if 60 <= t <= 120]
    last = [m for t, m in rss if t >= rss[-1][0] - 60]
    return {"seconds": seconds, "clients": args.soak_clients, "hostile_share": hostile_share,
            "counts": {k: {str(s): n for s, n in sorted(v.items())} for k, v in sorted(counts.items())},
            "server_errors": sum(n for v in counts.values() for s, n in v.items() if s == 500),
            "timeouts_504": sum(n for v in counts.values() for s, n in v.items() if s == 504),
            "ordinary_p50_ms": percentile(ordinary, 0.5), "ordinary_p99_ms": percentile(ordinary, 0.99),
            "ordinary_answered": len(ordinary), "rss_mb": rss,
            "rss_second_minute_mb": statistics.mean(minute) if minute else float("nan"),
            "rss_last_minute_mb": statistics.mean(last) if last else float("nan"),
            "decoders_at_end": final.get("translate_decoders", float("nan")),
            "kv_blocks_allocated_at_end": final.get("translate_kv_blocks_allocated", math.nan)}  # fmt: skip


def soak_markdown(soak: dict) -> list[str]:
    base, run = soak["baseline"], soak["hostile"]
    lines = [f"Soak: {run['clients']} clients, {run['seconds']:g} s, hostile share {run['hostile_share']:g} "
             f"(baseline: {base['seconds']:g} s without it)", "", "| kind | answers by status |",
             "|---|---|"]  # fmt: skip
    for kind, by_status in run["counts"].items():
        lines.append(f"| {kind} | " + ", ".join(f"{s}: {n}" for s, n in by_status.items()) + " |")
    ratio = run["rss_last_minute_mb"] / run["rss_second_minute_mb"]
    lines += ["", "| | baseline | with hostile clients |", "|---|---:|---:|",
              f"| ordinary p50 ms | {base['ordinary_p50_ms']:.0f} | {run['ordinary_p50_ms']:.0f} |",
              f"| ordinary p99 ms | {base['ordinary_p99_ms']:.0f} | {run['ordinary_p99_ms']:.0f} |",
              f"| ordinary answered | {base['ordinary_answered']} | {run['ordinary_answered']} |",
              f"| 500s (goal 0) | {base['server_errors']} | {run['server_errors']} |",
              f"| 504s (past --timeout) | {base['timeouts_504']} | {run['timeouts_504']} |",
              f"| RSS MB, 2nd minute -> last minute | | {run['rss_second_minute_mb']:.0f} -> "
              f"{run['rss_last_minute_mb']:.0f} ({ratio:.2f}x) |",
              f"| decoders, KV blocks allocated at the end | | {run['decoders_at_end']:g}, "
              f"{run['kv_blocks_allocated_at_end']:g} |", "",
              "RSS every 10 s (s: MB): " + ", ".join(f"{t}: {m:.0f}" for t, m in run["rss_mb"])]  # fmt: skip
    return lines


def table(rows: list[dict], columns, keys) -> list[str]:
    out = ["| " + " | ".join(c for c, _ in columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    for r in rows:
        cells = ["" if r[k] is None else fmt.format(r[k]) for (_, fmt), k in zip(columns, keys)]
        out.append("| " + " | ".join(cells) + " |")
    return out


def markdown(report: dict) -> str:
    lines = [f"# bench_serve ({report['cpu']}, torch {report['torch']}, {report['threads']} threads)", "",
             f"checkpoint `{report['checkpoint']}`", ""]
    if report["http"]:
        lines += [f"HTTP: beam {report['beam']}, {report['seconds']:g} s per cell", ""]
        lines += table(report["http"], HTTP_COLUMNS, HTTP_KEYS) + [""]
    if report["cache"]:
        lines += table(report["cache"], CACHE_COLUMNS, CACHE_KEYS)
    if report.get("soak"):
        lines += [""] + soak_markdown(report["soak"])
    return "\n".join(lines) + "\n"  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="the checkpoint to serve")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--schedulers", nargs="+", choices=list(SCHEDULERS), default=list(SCHEDULERS))
    p.add_argument("--seconds", type=float, default=30.0, help="measured time per cell")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    p.add_argument("--beam", type=int, default=SearchConfig.beam_size, help="beam size of every request")
    p.add_argument("--verses", type=int, default=500, help="test verses the clients cycle through")
    p.add_argument("--parts", nargs="+", choices=["http", "cache", "soak"], default=["http", "cache"])
    p.add_argument("--soak-seconds", type=float, default=600.0, help="the hostile run (soak part)")
    p.add_argument("--soak-baseline-seconds", type=float, default=120.0, help="the run without hostile ones")
    p.add_argument("--soak-clients", type=int, default=32)
    p.add_argument("--hostile-share", type=float, default=0.3, help="hostile requests' share (soak part)")
    p.add_argument("--cache-sentences", type=int, default=48, help="test verses (cache part)")
    p.add_argument("--cache-running", type=int, nargs="+", default=[1, 16, 32],
                   help="sentences running at once (cache part)")  # fmt: skip
    p.add_argument("--cache-beams", type=int, nargs="+", default=[1, SearchConfig.beam_size])
    p.add_argument("--repeats", type=int, default=4, help="alternating runs per cache cell (median time)")
    p.add_argument("--block-size", type=int, default=ServerConfig.block_size, help="paged cache (cache part)")
    p.add_argument("--out", default="reports/bench_serve.json", help="JSON; the markdown goes beside it")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    verses = test_verses(args.verses)
    report = {"cpu": describe_cpu(), "torch": torch.__version__, "threads": args.threads,
              "checkpoint": args.checkpoint, "beam": args.beam, "seconds": args.seconds, "http": [],
              "cache": []}  # fmt: skip
    if "cache" in args.parts:
        report["cache"] = cache_part(args, verses)
        print(markdown(report), flush=True)
    if "http" in args.parts:
        for label in args.schedulers:
            for n in args.clients:
                report["http"].append(run_cell(args, label, SCHEDULERS[label], n, verses))
                print(json.dumps(report["http"][-1]), flush=True)
    if "soak" in args.parts:
        report["soak"] = {"baseline": soak_run(args, verses, args.soak_baseline_seconds, 0.0)}
        print(json.dumps(report["soak"]["baseline"]), flush=True)
        report["soak"]["hostile"] = soak_run(args, verses, args.soak_seconds, args.hostile_share)
    out = Path(args.out)
    write_json(out, report)
    write_text(out.with_suffix(".md"), markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
