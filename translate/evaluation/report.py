"""The evaluation report: a markdown table and the Fig. 2 replica (BLEU vs source length)."""

from __future__ import annotations

from pathlib import Path

from translate.files import save_figure


def _fmt(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def markdown_report(results: dict) -> str:
    """Overall scores, then BLEU per source-length bucket with its interval and sentence count."""
    models = results["models"]
    conf = int(round(results["bootstrap"]["confidence"] * 100))
    search = results["search"]
    lines = [
        f"## {results['split']} split: {models[0]['sentences'] if models else 0} sentences",
        "",
        f"Search: beam {search['beam_size']}, alpha {search['alpha']}, "
        f"max length {search['max_len_a']} x source + {search['max_len_b']}. "
        f"Intervals: {conf}% percentile bootstrap over {results['bootstrap']['resamples']} resamples.",
        "",
        f"| model | parameters | BLEU | {conf}% CI | chrF | repeating outputs | glossary terms produced |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in models:
        lo, hi = m["bleu_ci"]
        t = m.get("terms")
        terms = "-" if not t else f"{t['produced']} of {t['occurrences']}" + (
            f" ({100 * t['success']:.1f}%)" if t["success"] is not None else "")  # fmt: skip
        rep = m.get("repetition_rate")
        lines.append(
            f"| {m['label']} | {_count(m['parameters'])} | {m['bleu']:.2f} | {lo:.1f}-{hi:.1f} "
            f"| {m['chrf']:.2f} | {_fmt(None if rep is None else 100 * rep)}% | {terms} |"
        )
    lines += ["", "Repeating outputs: a word or a pair of words 3+ times in a row, or a character 4+ times."]
    if models:
        lines += ["", f"BLEU signature: `{models[0]['bleu_signature']}`",
                  f"chrF signature: `{models[0]['chrf_signature']}`"]  # fmt: skip
        ranges = [b["range"] for b in models[0]["buckets"]]
        lines += [
            "",
            "BLEU by source length in words (Bahdanau et al. 2014, Fig. 2): BLEU [interval] (sentences)",
            "",
            "| model | " + " | ".join(ranges) + " |",
            "|---|" + "---:|" * len(ranges),
        ]
        for m in models:
            cells = []
            for b in m["buckets"]:
                if b["bleu"] is None:
                    cells.append("- (0)")
                else:
                    cells.append(f"{b['bleu']:.1f} [{b['ci'][0]:.1f}, {b['ci'][1]:.1f}] ({b['count']})")
            lines.append(f"| {m['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_bleu_by_length(results: dict, path: str | Path) -> Path:
    """BLEU per source-length bucket, one line per model with its bootstrap band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    ranges = []
    for m in results["models"]:
        ranges = [b["range"] for b in m["buckets"]]
        pts = [(i, b) for i, b in enumerate(m["buckets"]) if b["bleu"] is not None]
        if not pts:
            continue
        xs = [i for i, _ in pts]
        line = ax.plot(xs, [b["bleu"] for _, b in pts], marker="o", label=f"{m['label']} ({m['bleu']:.1f})")[
            0
        ]
        ax.fill_between(xs, [b["ci"][0] for _, b in pts], [b["ci"][1] for _, b in pts], alpha=0.15,
                        color=line.get_color(), linewidth=0)  # fmt: skip
    ax.set_xticks(range(len(ranges)), ranges)
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel("BLEU")
    conf = int(round(results["bootstrap"]["confidence"] * 100))
    ax.set_title(f"BLEU by sentence length, {results['split']} split (bands: {conf}% bootstrap)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    if results["models"]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="model (test BLEU)")
    save_figure(fig, path)
    plt.close(fig)
    return Path(path)
