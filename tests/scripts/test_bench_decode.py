"""scripts/bench_decode.py --engines: each CTranslate2 row says what CTranslate2 really ran."""

import bench_decode


def row(engine: str, compute_type: str | None) -> dict:
    return {"engine": engine, "compute_type": compute_type, "threads": 1, "search": "greedy",
            "sentences_per_s": 10.0, "tokens_per_s": 100.0, "bleu": 20.0, "bleu_diff": 0.0, "chrf": 40.0,
            "same_as_first": 1.0, "peak_rss_mib": 500.0, "model_mib": 8.0}  # fmt: skip


def test_engine_rows_name_the_compute_type_only_where_ctranslate2_fell_back():
    report = {"sentences": 2, "checkpoint": "c.pt", "cpu": "AMD EPYC", "torch": "2.13", "ctranslate2": "4.8",
              "repeats": 1, "search": {"alpha": 0.6, "max_len_a": 1.5, "max_len_b": 10, "batch_tokens": 4096,
                         "repeat_guard": 3},
              "load_average": [0.5], "notes": [],
              "rows": [row("torch", None), row("ct2-int8", "int8_float32"), row("ct2-int16", "int8_float32"),
                       row("ct2-float32", "float32")]}  # fmt: skip
    table = bench_decode.engines_markdown(report).splitlines()
    names = [line.split(" | ")[2] for line in table if line.startswith("| 1 |")]
    assert names == ["ours fp32", "CTranslate2 int8", "CTranslate2 int16 (runs int8_float32)",
                     "CTranslate2 float32"]  # fmt: skip
