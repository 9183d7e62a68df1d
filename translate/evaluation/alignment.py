"""Alignment pictures like Bahdanau et al. (2014), Fig. 3: attention weights as a grey-scale matrix.

Rows are target words (the model's own translation, EOS last), columns source words (EOS last): the models
attend over SentencePiece pieces, so a word's column is the sum of its pieces' weights (attention mass on
the word) and a word's row the mean of its pieces' rows (so rows still sum to 1).
RNNsearch gives one map (additive attention); the Transformer one per decoder layer, heads averaged.

Legend: B batch, H heads, T target length (incl. EOS), S source length (incl. EOS).
"""

from __future__ import annotations

from pathlib import Path

import torch

from translate.data.vocab import BOS_ID, EOS_ID
from translate.files import save_figure


@torch.no_grad()
def alignment_maps(model, src_ids: list[int], tgt_ids: list[int]) -> dict[str, torch.Tensor]:
    """One sentence pair (ids without BOS/EOS) -> {name: (T, S)}, heads averaged; {} if none."""
    device = next(model.parameters()).device
    src = torch.tensor([src_ids + [EOS_ID]], device=device)  # (1, S)
    tgt_in = torch.tensor([[BOS_ID] + tgt_ids], device=device)  # (1, T): row t is the step that emits token t
    maps = {}
    for name, w in model.attention_weights(src, tgt_in).items():
        w = w[0].float().cpu()  # (T, S) or (H, T, S)
        maps[name] = w.mean(0) if w.dim() == 3 else w  # (T, S)
    if len(maps) > 1:
        maps["mean"] = torch.stack(list(maps.values())).mean(0)  # (T, S) averaged over layers too
    return maps


def word_groups(pieces: list[str]) -> list[list[int]]:
    """Piece indices grouped into whitespace words: a piece starting with U+2581 opens a new word."""
    groups: list[list[int]] = []
    for i, p in enumerate(pieces):
        if not groups or p.startswith("\u2581"):
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def word(pieces: list[str], group: list[int]) -> str:
    return "".join(pieces[i] for i in group).replace("\u2581", " ").strip() or "\u2581"


def words_and_eos(pieces: list[str]) -> tuple[list[list[int]], list[str]]:
    """-> (word groups with EOS as a last word of its own, their labels) for one side of a map."""
    groups = word_groups(pieces)
    return groups + [[len(pieces)]], [word(pieces, g) for g in groups] + ["</s>"]


def to_words(w: torch.Tensor, src_groups: list[list[int]], tgt_groups: list[list[int]]) -> torch.Tensor:
    """(T, S) piece weights -> (T', S') word weights: source columns summed, target rows averaged per word."""
    cols = torch.stack([w[:, g].sum(-1) for g in src_groups], -1)  # (T, S')
    return torch.stack([cols[g].mean(0) for g in tgt_groups])  # (T', S')


def plot_alignment(
    maps: dict[str, torch.Tensor], src_labels: list[str], tgt_labels: list[str], path, title=""
):
    """One panel per map (source words across, target words down), white = weight 1, black = 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(maps)
    S, T = len(src_labels), len(tgt_labels)
    cell = 0.28
    fig, axes = plt.subplots(
        1, n, figsize=(max(3.0, cell * S + 1.5) * n, max(2.5, cell * T + 1.5)), squeeze=False
    )
    for ax, (name, w) in zip(axes[0], maps.items()):
        ax.imshow(w.numpy(), cmap="gray", vmin=0.0, vmax=1.0, aspect="equal", interpolation="nearest")
        ax.set_xticks(range(S), src_labels, rotation=90, fontsize=8)
        ax.set_yticks(range(T), tgt_labels, fontsize=8)
        ax.xaxis.tick_top()
        ax.set_xlabel(name)
    if title:
        fig.suptitle(title, fontsize=9, y=1.0)
        fig.tight_layout()  # the source words on top must not run into the title
    save_figure(fig, path)
    plt.close(fig)
    return Path(path)


def draw_alignments(model, tokenizer, sources: list[str], hyp_ids: list[list[int]], out_dir, prefix: str):
    """PNG per sentence (out_dir/<prefix>-<i>.png) from the model's translations ([]: no attention)."""
    paths = []
    for i, (text, tgt) in enumerate(zip(sources, hyp_ids)):
        src = tokenizer.encode(text, "src")
        maps = alignment_maps(model, src, tgt)
        if not maps:
            return []
        # encode_pieces gives the source text of each piece, also where the id is <unk> (same segmentation)
        src_groups, src_labels = words_and_eos(tokenizer.encode_pieces(text, "src"))
        tgt_groups, tgt_labels = words_and_eos([tokenizer.id_to_piece(t, "tgt") for t in tgt])
        maps = {name: to_words(w, src_groups, tgt_groups) for name, w in maps.items()}
        title = f"{prefix}: {text if len(text) <= 120 else text[:119] + chr(0x2026)}"
        paths.append(plot_alignment(maps, src_labels, tgt_labels, Path(out_dir) / f"{prefix}-{i}.png", title))
    return paths

