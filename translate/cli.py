"""The `translate` command: Spanish in, English out, with everything read from one checkpoint.

  translate "Dios es amor."                  arguments, one output line each
  translate -i in.txt -o out.txt             a file (token batches, progress bar, output written atomically)
  cat in.txt | translate                     stdin to stdout, streaming: each line is flushed as it is done
  translate                                  at a terminal: an interactive prompt
  translate --engine ct2 --model-dir DIR     a CTranslate2 export (translate export CKPT -o DIR) instead
  translate --quantize int8                  our engine with PyTorch dynamic int8 (Linear, GRU), CPU only
  translate export CKPT -o DIR               the export subcommand (translate/export.py)

One output line per input line (an empty line stays empty); with --nbest N the N best translations share
the line, separated by tabs. Errors are one line, `translate: error: ...`, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translate.engines import ENGINES, QUANTIZE, EngineError, load_engine
from translate.evaluation.checkpoints import newest_best_checkpoint, resolve_device
from translate.files import write_lines
from translate.models.checkpoint import CheckpointError
from translate.search import SearchConfig

PROG = "translate"


class UsageError(Exception):
    """Bad input from the user (file, option): reported as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Translate text with a trained checkpoint.")
    p.add_argument("text", nargs="*", help="sentences to translate (default: -i file, or stdin)")
    p.add_argument("-i", "--input", help="input file, one sentence per line")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument(
        "--checkpoint", "-c", help="checkpoint file (default: the newest runs/**/checkpoints/best.pt)"
    )
    d = SearchConfig()  # the flags map one to one onto SearchConfig, with its defaults
    p.add_argument("--beam", type=int, default=d.beam_size,
                   help=f"beam size; 1 = greedy (default: {d.beam_size})")  # fmt: skip
    p.add_argument("--nbest", type=int, default=d.nbest,
                   help=f"translations per line, tab-separated (default: {d.nbest})")  # fmt: skip
    p.add_argument("--alpha", type=float, default=d.alpha,
                   help=f"length penalty ((5+len)/6)^alpha (default: {d.alpha})")  # fmt: skip
    p.add_argument("--max-len-a", type=float, default=d.max_len_a,
                   help=f"length limit a * src + b: a (default: {d.max_len_a})")  # fmt: skip
    p.add_argument("--max-len-b", type=int, default=d.max_len_b,
                   help=f"length limit a * src + b: b (default: {d.max_len_b})")  # fmt: skip
    p.add_argument("--max-src-len", type=int, default=512,
                   help="inputs are cut to this many subwords, with a warning (default: 512)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--engine", default="torch", choices=ENGINES,
                   help="torch: our search on a checkpoint; ct2: CTranslate2 (default: torch)")  # fmt: skip
    p.add_argument("--model-dir", help="--engine ct2: a directory written by `translate export`")
    p.add_argument("--quantize", default="none", choices=QUANTIZE,
                   help="--engine torch: int8 = PyTorch dynamic int8 on the CPU (default: none)")  # fmt: skip
    p.add_argument("--batch-tokens", type=int, default=d.max_tokens,
                   help=f"source tokens per batch (default: {d.max_tokens})")  # fmt: skip
    return p


class Translator:
    """A loaded checkpoint plus the search settings: lines of text in, lines of text out."""

    def __init__(self, args: argparse.Namespace):
        path = args.model_dir if args.engine == "ct2" else args.checkpoint or str(newest_best_checkpoint())
        device = resolve_device(args.device)
        if args.quantize == "int8" and args.device == "auto":
            device = "cpu"  # dynamic int8 has CPU kernels only
        self.engine = load_engine(args.engine, path, device=device, quantize=args.quantize)
        self.tokenizer, self.args = self.engine.tokenizer, args
        self.search = search_config(args)
        limit = self.engine.source_limit
        self.max_src = args.max_src_len if limit is None else min(args.max_src_len, limit)

    def describe(self) -> str:
        return self.engine.describe()

    def encode(self, lines: list[str], numbers: list[int]) -> list[list[int]]:
        """Subword ids per line; a line longer than max_src is cut, with a warning naming its number."""
        out = []
        for n, line in zip(numbers, lines):
            ids = self.tokenizer.encode(line, "src")
            if len(ids) > self.max_src:
                warn(f"line {n}: {len(ids)} subwords, only the first {self.max_src} are translated")
                ids = ids[: self.max_src]
            out.append(ids)
        return out

    def translate(self, lines: list[str], first_line: int = 1, progress: bool = False) -> list[str]:
        """One output line per input line; blank lines stay blank."""
        todo = [i for i, line in enumerate(lines) if line.strip()]
        src = self.encode([lines[i] for i in todo], [first_line + i for i in todo])
        hyps = self.engine.translate_ids(src, self.search, progress=progress, desc=PROG)
        out = [""] * len(lines)
        for i, nbest in zip(todo, hyps):
            out[i] = "\t".join(self.tokenizer.decode(h.tokens, "tgt") for h in nbest)
        return out


FLAGS = {"beam_size": "--beam", "nbest": "--nbest", "alpha": "--alpha", "max_len_a": "--max-len-a",
         "max_len_b": "--max-len-b", "max_tokens": "--batch-tokens"}  # fmt: skip


def search_config(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig(
        beam_size=args.beam, nbest=args.nbest, alpha=args.alpha, max_len_a=args.max_len_a,
        max_len_b=args.max_len_b, max_tokens=args.batch_tokens,
    )  # fmt: skip


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such input file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read ({e})") from None


def emit(lines: list[str], output: str | None) -> None:
    if output:
        write_lines(output, lines)
    else:
        for line in lines:
            print(line, flush=True)


def stream(translator: Translator, stdin, stdout) -> None:
    """stdin to stdout line by line, each translation flushed before the next line is read."""
    for n, line in enumerate(stdin, 1):
        stdout.write(translator.translate([line.rstrip("\r\n")], first_line=n)[0] + "\n")
        stdout.flush()


def interactive(translator: Translator) -> None:
    print(f"{translator.describe()}\nType a sentence, Ctrl-D to quit.", file=sys.stderr)
    n = 0
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return
        n += 1
        print(translator.translate([line], first_line=n)[0], flush=True)


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        search_config(args)
    except ValueError as e:  # the message starts with the field's name: show the flag's
        field, rest = str(e).split(" ", 1)
        p.error(f"{FLAGS.get(field, field)} {rest}")
    if args.max_src_len < 1:
        p.error("--max-src-len must be >= 1")
    if args.text and args.input:
        p.error("give sentences or -i FILE, not both")
    if args.engine == "ct2" and not args.model_dir:
        p.error("--engine ct2 needs --model-dir DIR (write one with: translate export CKPT -o DIR)")
    if args.engine == "ct2" and (args.checkpoint or args.quantize != "none"):
        p.error("--engine ct2 reads --model-dir; --checkpoint and --quantize belong to --engine torch")
    if args.engine == "torch" and args.model_dir:
        p.error("--model-dir is for --engine ct2")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:  # the subcommand; `translate -- export` translates the word
        from translate.export import main as export_main

        return export_main(argv[1:])
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    try:
        lines = read_lines(args.input) if args.input else None
        translator = Translator(args)
        if args.text:
            emit(translator.translate(args.text), args.output)
        elif lines is not None:
            emit(translator.translate(lines, progress=True), args.output)
        elif sys.stdin.isatty() and not args.output:
            interactive(translator)
        elif args.output:
            emit(
                translator.translate([line.rstrip("\r\n") for line in sys.stdin], progress=True), args.output
            )
        else:
            stream(translator, sys.stdin, sys.stdout)
    except (CheckpointError, EngineError, UsageError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `translate < big.txt | head`
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
