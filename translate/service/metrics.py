"""GET /metrics in the Prometheus text format (version 0.0.4): per model the queue depth, active sequences,
KV cache blocks and bytes, tokens generated and tokens/s; per status code the responses sent."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counters:
    responses: Counter = field(default_factory=Counter)  # status code -> count
    disconnects: int = 0
    abandoned_work: int = 0  # requests whose alignment thread was stopped (client gone, deadline) and ended
    draining: bool = False

    def count(self, status: int) -> None:
        self.responses[status] += 1


GAUGES = [
    ("translate_queue_depth", "gauge", "Sentences waiting for the model worker.",
     lambda w: w.queue_depth),
    ("translate_active_sequences", "gauge", "Sentences in the running batch.", lambda w: w.active),
    ("translate_kv_blocks_in_use", "gauge", "Paged KV cache blocks held by running sequences.",
     lambda w: w.kv_blocks[0]),
    ("translate_kv_blocks_allocated", "gauge", "Paged KV cache blocks in the pools.",
     lambda w: w.kv_blocks[1]),
    ("translate_kv_cache_allocated_bytes", "gauge", "Bytes of the running self-attention KV cache.",
     lambda w: w.kv_bytes[0]),
    ("translate_kv_cache_used_bytes", "gauge", "Bytes of it that hold keys/values a sequence may see.",
     lambda w: w.kv_bytes[1]),
    ("translate_tokens_per_second", "gauge", "Target tokens generated per second, last 10 s.",
     lambda w: round(w.tokens_per_second(), 2)),
    ("translate_generated_tokens_total", "counter", "Target tokens generated (EOS included).",
     lambda w: w.tokens),
    ("translate_sentences_total", "counter", "Sentences translated.", lambda w: w.sentences),
    ("translate_decoders", "gauge", "Continuous-batching decoders held (one per search shape in flight).",
     lambda w: w.decoders),
]  # fmt: skip


def prometheus_text(served: dict, counters: Counters) -> str:
    lines = []
    for name, kind, help_text, read in GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{model="{m}"}} {read(s.worker)}' for m, s in served.items()]
    lines += ["# HELP translate_responses_total HTTP responses by status code.",
              "# TYPE translate_responses_total counter"]  # fmt: skip
    lines += [f'translate_responses_total{{code="{c}"}} {n}' for c, n in sorted(counters.responses.items())]
    lines += ["# HELP translate_client_disconnects_total Requests whose client left before the answer.",
              "# TYPE translate_client_disconnects_total counter",
              f"translate_client_disconnects_total {counters.disconnects}",
              "# HELP translate_abandoned_work_total Requests whose alignment work stopped early (client "
              "gone or deadline passed), counted once its thread ended.",
              "# TYPE translate_abandoned_work_total counter",
              f"translate_abandoned_work_total {counters.abandoned_work}"]  # fmt: skip
    return "\n".join(lines) + "\n"
