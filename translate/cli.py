"""The `translate` command: Spanish in, English out, with everything read from one checkpoint.

  translate "Dios es amor."                  arguments, one output line each
  translate -i in.txt -o out.txt             a file (token batches, progress bar, output written atomically)
  cat in.txt | translate                     stdin to stdout, streaming: each line is flushed as it is done
  translate                                  at a terminal: an interactive prompt
  translate serve --model name=ckpt.pt       the HTTP service and web page (translate/serve.py)

One output line per input line (an empty line stays empty); with --nbest N the N best translations share
the line, separated by tabs. Errors are one line, `translate: error: ...`, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translate.evaluation.checkpoints import newest_best_checkpoint, resolve_device
from translate.files import write_lines
from translate.models.checkpoint import CheckpointError
from translate.search import SearchConfig
from translate.service import ServiceConfig
from translate.service import Translator as Engine

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
    p.add_argument("--max-src-len", type=int, default=ServiceConfig.max_src_len,
                   help="a longer sentence is cut at its best split points, translated in parts and joined "
                        f"again (default: {ServiceConfig.max_src_len})")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch-tokens", type=int, default=d.max_tokens,
                   help=f"source tokens per batch (default: {d.max_tokens})")  # fmt: skip
    return p


class Translator:
    """A loaded checkpoint plus the search settings: lines of text in, lines of text out."""

    def __init__(self, args: argparse.Namespace):
        path = args.checkpoint or str(newest_best_checkpoint())
        self.engine = Engine.load(path, resolve_device(args.device), ServiceConfig(args.max_src_len))
        self.path, self.args = path, args
        self.search = search_config(args)

    def describe(self) -> str:
        return f"{self.path}: {self.engine.model.describe()}"

    def translate(self, lines: list[str], progress: bool = False) -> list[str]:
        """One output line per input line (a long line is split into sentences and joined again); blank
        lines stay blank."""
        out = self.engine.translate(lines, self.search, progress=progress, desc=PROG)
        return ["\t".join(nbest) if nbest[0] else "" for nbest in out]


FLAGS = {"beam_size": "--beam", "nbest": "--nbest", "alpha": "--alpha", "max_len_a": "--max-len-a",
         "max_len_b": "--max-len-b", "max_tokens": "--batch-tokens"}  # fmt: skip


def search_config(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig(
        beam_size=args.beam, nbest=args.nbest, alpha=args.alpha, max_len_a=args.max_len_a,
        max_len_b=args.max_len_b, max_tokens=args.batch_tokens,
    )  # fmt: skip


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
    for line in stdin:
        stdout.write(translator.translate([line.rstrip("\r\n")])[0] + "\n")
        stdout.flush()


def interactive(translator: Translator) -> None:
    print(f"{translator.describe()}\nType a sentence, Ctrl-D to quit.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return
        print(translator.translate([line])[0], flush=True)


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # `translate serve ...`; `translate -- serve` translates the word
        from translate.serve import main as serve

        return serve(argv[1:])
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
    except (CheckpointError, UsageError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `translate < big.txt | head`
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
