"""One optimizer update of the default Transformer's parameters: PyTorch's default (foreach) AdamW against
the fused kernel that conf/optimizer/adamw.yaml asks for, alternating in one process.

    python scripts/bench_optimizer.py          # 7.58M parameters (conf/model/transformer.yaml, 8k vocab)
    python scripts/bench_optimizer.py --steps 40 --json bench_optimizer.json

Both optimizers update their own copy of the same parameters with the same random gradients; the order is
swapped every step. Reported per implementation: the median and the best wall time of a step and the median
CPU time of this process (less sensitive to other jobs on the same cores than wall time), and how far the
two copies drifted apart (float rounding only). Writes JSON (--json) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from translate import allocator  # noqa: E402

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from translate.files import write_text  # noqa: E402
from translate.machine import describe_cpu  # noqa: E402
from translate.models.build import build_model  # noqa: E402

IMPLEMENTATIONS = {"foreach": {"foreach": True}, "fused": {"fused": True}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path, default=Path("bench_optimizer.json"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/model/transformer.yaml"))
    params, opts = {}, {}
    for name, kind in IMPLEMENTATIONS.items():
        torch.manual_seed(0)
        params[name] = list(build_model(cfg, args.vocab, args.vocab, True).parameters())
        opts[name] = torch.optim.AdamW(params[name], lr=1e-4, betas=(0.9, 0.98), eps=1e-9, **kind)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in IMPLEMENTATIONS}
    for step in range(args.steps + 1):  # step 0 creates the optimizer state: not timed
        grads = [torch.randn_like(x) for x in params["foreach"]]
        order = list(IMPLEMENTATIONS) if step % 2 == 0 else list(IMPLEMENTATIONS)[::-1]
        for name in order:
            for x, g in zip(params[name], grads):
                x.grad = g.clone()
            wall, cpu = time.perf_counter(), time.process_time()
            opts[name].step()
            if step:
                times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    drift = max((a - b).abs().max().item() for a, b in zip(params["foreach"], params["fused"]))
    rows = [{"optimizer": f"AdamW {name}", "median_ms": 1e3 * statistics.median(w for w, _ in ts),
             "best_ms": 1e3 * min(w for w, _ in ts),
             "cpu_median_ms": 1e3 * statistics.median(c for _, c in ts)} for name, ts in times.items()]
    report = {"cpu": describe_cpu(), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "allocator": allocator.describe(), "parameters": sum(x.numel() for x in params["fused"]),
              "steps": args.steps, "max_abs_drift": drift, "rows": rows}  # fmt: skip
    write_text(args.json, json.dumps(report, indent=2) + "\n")
    print(f"{report['cpu']}; torch {report['torch']}, {report['threads']} threads; allocator "
          f"{report['allocator']}; {report['parameters']:,} parameters, {args.steps} steps")  # fmt: skip
    print("| optimizer | median ms/step | best ms/step | CPU ms/step (median) |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['optimizer']} | {r['median_ms']:.1f} | {r['best_ms']:.1f} | {r['cpu_median_ms']:.1f} |")
    print(f"largest difference between the two copies after {args.steps + 1} updates: {drift:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
