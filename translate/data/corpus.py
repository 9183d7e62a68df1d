"""Read a parallel corpus into datasets.Dataset splits with two string columns, src and tgt.

Three sources, chosen by data_cfg.source (one if/else, no registry):
  tsv    a directory of {train,dev,test}.tsv[.gz] with a header naming the columns (the embedded Bible);
  local  any corpus: per split a TSV file (src<TAB>tgt) or two aligned plain-text files; missing dev/test
         splits are carved deterministically out of train;
  hub    a Hugging Face hub dataset in the WMT format (rows {"translation": {lang: text}}), or a local
         directory laid out like the hub repository (<path>/<name>/<split>-*.parquet|json).
Text files are read by our own reader so a bad byte or a ragged line is reported with its file and line.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path

import datasets
import numpy as np

from translate.data.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_path(path: str | Path) -> Path:
    """Absolute path: as given; relative: against the process's working directory if it exists there,
    otherwise against the project root (so a checkpoint's data config works from any directory).

    The same rule inside and outside a Hydra app: the apps run in the launch directory and pass their own
    paths down absolute (translate/train.py, translate/evaluate.py)."""
    p = Path(str(path)).expanduser()
    if p.is_absolute():
        return p
    here = Path.cwd() / p
    return here if here.exists() else PROJECT_ROOT / p


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file (gzip if the name ends in .gz), without line ends."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for n, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            bad = f"byte 0x{line[e.start]:02x} at column {e.start + 1}"
            raise DataError(f"{path}:{n}: not valid UTF-8 ({bad})") from None
        out.append(text.rstrip("\r"))
    if out and out[0].startswith("\ufeff"):
        out[0] = out[0][1:]
    return out


def read_tsv(path: str | Path, header: bool, columns: tuple[str, str] | None = None) -> tuple[list, list]:
    """(src, tgt) from a TSV file: the named header columns, else the first two fields of each line."""
    lines = read_lines(path)
    first = 1
    src_col, tgt_col, width = 0, 1, 2
    if header:
        if not lines:
            raise DataError(f"{path}: empty file, expected a header line")
        names = lines[0].split("\t")
        width, first = len(names), 2
        if columns is not None:
            for c in columns:
                if c not in names:
                    raise DataError(f"{path}:1: header has no column {c!r} (columns: {', '.join(names)})")
            src_col, tgt_col = names.index(columns[0]), names.index(columns[1])
        lines = lines[1:]
    src, tgt = [], []
    for n, line in enumerate(lines, first):
        fields = line.split("\t")
        if len(fields) != width:
            raise DataError(f"{path}:{n}: expected {width} tab-separated fields, got {len(fields)}")
        src.append(fields[src_col])
        tgt.append(fields[tgt_col])
    return src, tgt


def read_parallel_text(src_path: str | Path, tgt_path: str | Path) -> tuple[list, list]:
    """(src, tgt) from two plain-text files aligned line by line."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)} lines: "
            "parallel files must be aligned line by line"
        )
    return src, tgt


def _dataset(src: list, tgt: list) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"src": src, "tgt": tgt})


def _load_tsv_dir(cfg, splits) -> dict[str, datasets.Dataset]:
    root = resolve_path(cfg.path)
    if not root.is_dir():
        raise DataError(f"data.path: {root} is not a directory (expected {{train,dev,test}}.tsv.gz inside)")
    out = {}
    for split in splits:
        candidates = [root / f"{split}.tsv.gz", root / f"{split}.tsv"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DataError(f"data.path: {root} has no {split}.tsv.gz or {split}.tsv")
        out[split] = _dataset(*read_tsv(path, header=True, columns=(cfg.src_lang, cfg.tgt_lang)))
    return out


def _read_local(spec, header: bool, option: str) -> tuple[list, list]:
    """A TSV path, or a list of two aligned text files [src, tgt]."""
    if isinstance(spec, str):
        return read_tsv(resolve_path(spec), header=header)
    files = list(spec)
    if len(files) != 2:
        raise DataError(f"{option}: expected a TSV path or a list of two files [src, tgt], got {files}")
    return read_parallel_text(resolve_path(files[0]), resolve_path(files[1]))


def carve(n: int, dev_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Deterministic disjoint row indices (sorted) for train/dev/test, carved from n training rows."""
    order = np.random.default_rng(seed).permutation(n)
    n_dev, n_test = round(dev_fraction * n), round(test_fraction * n)
    if n_dev + n_test >= n:
        raise DataError(f"data.carve: cannot hold out {n_dev} dev + {n_test} test pairs from {n} train pairs")
    return {
        "dev": np.sort(order[:n_dev]),
        "test": np.sort(order[n_dev : n_dev + n_test]),
        "train": np.sort(order[n_dev + n_test :]),
    }


def _load_local(cfg, splits) -> dict[str, datasets.Dataset]:
    if cfg.train is None:
        raise DataError("data.train: required for data=local (a TSV file or [src.txt, tgt.txt])")
    given = {s: cfg[s] for s in SPLITS if cfg[s] is not None}
    missing = [s for s in SPLITS if s not in given]
    train_src, train_tgt = _read_local(given["train"], cfg.header, "data.train")
    train = _dataset(train_src, train_tgt)
    out = {}
    if missing:
        idx = carve(len(train), cfg.carve.dev if "dev" in missing else 0.0,
                    cfg.carve.test if "test" in missing else 0.0, cfg.carve.seed)
        log.info("data: carved %s out of %s train pairs", ", ".join(f"{len(idx[s])} {s}" for s in missing),
                 len(train))
        for s in missing:
            if s in splits:
                out[s] = train.select(idx[s])
        train = train.select(idx["train"])
    for s in splits:
        if s == "train":
            out[s] = train
        elif s in given:
            out[s] = _dataset(*_read_local(given[s], cfg.header, f"data.{s}"))
    return out


def _from_translation(batch: dict, src_lang: str, tgt_lang: str) -> dict:
    src, tgt = [], []
    for row in batch["translation"]:
        if not row or src_lang not in row or tgt_lang not in row:
            raise DataError(f"translation row without {src_lang!r} and {tgt_lang!r}: {row!r}")
        src.append(row[src_lang] or "")
        tgt.append(row[tgt_lang] or "")
    return {"src": src, "tgt": tgt}


def _load_hub(cfg, splits, cache_dir: Path) -> dict[str, datasets.Dataset]:
    local = resolve_path(cfg.path)
    out = {}
    for split in splits:
        hub_split = cfg.hub_splits[split]
        hf_cache = str(cache_dir / "hf")
        try:
            if local.is_dir():
                ds = datasets.load_dataset(str(local), data_dir=cfg.hub_config, split=hub_split,
                                           cache_dir=hf_cache)
            else:
                ds = datasets.load_dataset(cfg.path, cfg.hub_config, split=hub_split, cache_dir=hf_cache)
        except (FileNotFoundError, ValueError, ConnectionError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            where = f"data.path={cfg.path} data.hub_config={cfg.hub_config} split {hub_split}"
            raise DataError(f"{where}: {msg}") from None
        if "translation" not in ds.column_names:
            raise DataError(f"data.path={cfg.path}: split {hub_split} has no 'translation' column "
                            f"(columns: {', '.join(ds.column_names)})")
        out[split] = ds.map(_from_translation, batched=True, remove_columns=ds.column_names,
                            fn_kwargs={"src_lang": cfg.src_lang, "tgt_lang": cfg.tgt_lang},
                            desc=f"{split}: {cfg.src_lang}-{cfg.tgt_lang} columns")
    return out


def load_splits(cfg, splits, cache_dir: str | Path) -> dict[str, datasets.Dataset]:
    """The requested splits of the corpus described by data_cfg, as Datasets with columns src, tgt."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise DataError(f"unknown split(s) {unknown}: expected some of {list(SPLITS)}")
    if cfg.source == "tsv":
        return _load_tsv_dir(cfg, splits)
    if cfg.source == "local":
        return _load_local(cfg, splits)
    if cfg.source == "hub":
        return _load_hub(cfg, splits, Path(cache_dir))
    raise DataError(f"data.source: expected tsv, local or hub, got {cfg.source!r}")


def content_key(ds: datasets.Dataset) -> str:
    """Hash of a split's text (src and tgt columns): keys caches that depend on the corpus content."""
    h = hashlib.sha256()
    for batch in ds.select_columns(["src", "tgt"]).iter(batch_size=10_000):
        for s, t in zip(batch["src"], batch["tgt"]):
            h.update(s.encode("utf-8"))
            h.update(b"\t")
            h.update(t.encode("utf-8"))
            h.update(b"\n")
    return h.hexdigest()[:16]
