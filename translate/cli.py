"""The `translate` command: Spanish in, English out, with everything read from one checkpoint.

  translate "Dios es amor."                  arguments, one output line each
  translate -i in.txt -o out.txt             a file (token batches, progress bar, output written atomically)
  cat in.txt | translate                     stdin to stdout, streaming: each line is flushed as it is done
  translate                                  at a terminal: an interactive prompt
  translate --engine ct2 --model-dir DIR     a CTranslate2 export (translate export CKPT -o DIR) instead
  translate --quantize int8                  our engine with PyTorch dynamic int8 (Linear, GRU), CPU only
  translate --glossary terms.tsv             each term (source<TAB>target) whose source occurs is produced
  translate --strategy sample --seed 3       a sample instead of the beam's best (the same on every run)
  translate export CKPT -o DIR               the export subcommand (translate/export.py)
  translate import marian SOURCE -o CKPT     an OPUS-MT / Marian model as a checkpoint (translate/importer.py)
  translate serve --model name=ckpt.pt       the HTTP service and web page (translate/serve.py)

One output line per input line (translate.data.lines holds the contract): lines end at "\n" only, a trailing
"\r" is dropped, input is read as bytes and invalid UTF-8 becomes U+FFFD with one warning naming the lines,
and a line with nothing to translate (blank, or only characters the tokenizer drops) gives an empty line.
A line is translated sentence by sentence (translate.service: pysbd sentences, a sentence over --max-src-len
subwords cut at its best split points, the parts joined back on the same line; nothing is truncated).
With --nbest N the N best translations share the line, separated by tabs. Output is UTF-8 whatever the
locale. Errors are one line, `translate: error: ...`, exit status 2.
"""

from __future__ import annotations

from translate import allocator

if __name__ == "__main__":
    allocator.preload()  # first: re-executes under mimalloc before torch is imported (translate/allocator.py)

import argparse
import sys
from pathlib import Path

from translate.data.lines import clean_text, decode_line, invalid_utf8_message, split_lines
from translate.device import DeviceError
from translate.engines import CT2_STOPPING, ENGINES, QUANTIZE, EngineError, engine_device, load_engine
from translate.files import write_lines
from translate.models.checkpoint import CheckpointError, newest_best_checkpoint
from translate.search import SearchError
from translate.search.flags import add_search_flags, flag_error, search_from_args
from translate.search.glossary import GlossaryError, read_glossary
from translate.service import ServiceConfig, Translator

PROG = "translate"


class UsageError(Exception):
    """Bad input from the user (file, option): reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, `translate: error: ...`, exit status 2 (argparse would print its usage line first)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Translate text with a trained checkpoint.")
    p.add_argument("text", nargs="*", help="sentences to translate (default: -i file, or stdin)")
    p.add_argument("-i", "--input", help="input file, one sentence per line")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument(
        "--checkpoint", "-c", help="checkpoint file (default: the newest runs/**/checkpoints/best.pt)"
    )
    add_search_flags(p)  # one to one onto SearchConfig, with its defaults
    p.add_argument("--max-src-len", type=int, default=ServiceConfig.max_src_len,
                   help="a longer sentence is cut at its best split points, translated in parts and joined "
                        f"again (default: {ServiceConfig.max_src_len})")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--engine", default="torch", choices=ENGINES,
                   help="torch: our search on a checkpoint; ct2: CTranslate2 (default: torch)")  # fmt: skip
    p.add_argument("--model-dir", help="--engine ct2: a directory written by `translate export`")
    p.add_argument("--ct2-stopping", default=CT2_STOPPING[0], choices=CT2_STOPPING,
                   help="--engine ct2: native = CTranslate2 stops at K ended hypotheses (fast); exact = "
                        "our beam's bound, searching to the length limit "
                        f"(default: {CT2_STOPPING[0]})")  # fmt: skip
    p.add_argument("--quantize", default="none", choices=QUANTIZE,
                   help="--engine torch: int8 = PyTorch dynamic int8 on the CPU (default: none)")  # fmt: skip
    p.add_argument("--glossary", metavar="TSV",
                   help="source<TAB>target terms produced wherever the source term occurs (beam search, "
                        "--engine torch)")  # fmt: skip
    p.add_argument("--shortlist", metavar="FILE",
                   help="--engine torch: decode over each batch's candidate target pieces only (a vocabulary "
                        "shortlist from scripts/build_shortlist.py; faster, may change outputs)")  # fmt: skip
    return p


class LineTranslator:
    """The command line's service.Translator plus its search settings: lines of text in, one line of text out
    each (n-best joined by tabs)."""

    def __init__(self, args: argparse.Namespace):
        path = args.model_dir if args.engine == "ct2" else args.checkpoint or str(newest_best_checkpoint())
        device = engine_device(args.device, args.quantize)
        engine = load_engine(
            args.engine, path, device=device, quantize=args.quantize, ct2_stopping=args.ct2_stopping,
            shortlist=args.shortlist,
        )
        self.service = Translator(engine, ServiceConfig(args.max_src_len))
        self.args, self.search = args, search_from_args(args)
        self.glossary = read_glossary(args.glossary) if args.glossary else None

    def describe(self) -> str:
        return self.service.describe()

    def translate(self, lines: list[str], first_line: int = 1, progress: bool = False) -> list[str]:
        """One output line per input line (split into sentences and joined again); a line with no source ids
        (blank, or only characters such as \x07, U+200B or a BOM that the tokenizer drops) gives an empty
        line."""
        out = self.service.translate(lines, self.search, progress=progress, desc=PROG, first_line=first_line,
                                     glossary=self.glossary)  # fmt: skip
        return ["\t".join(nbest) if any(nbest) else "" for nbest in out]


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def warn_invalid(bad: list[int]) -> None:
    if bad:
        warn(invalid_utf8_message(bad))


def read_lines(path: str) -> list[str]:
    """The input file's lines (translate.data.lines), read as bytes; invalid UTF-8 is warned about once."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such input file") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e.strerror or e})") from None
    lines, bad = split_lines(data)
    warn_invalid(bad)
    return lines


def binary(stream):
    """The bytes under a text stream (sys.stdin/sys.stdout); a stream without one is used as it is."""
    return getattr(stream, "buffer", stream)


def writer(stream):
    """-> write(text): UTF-8 bytes whatever the locale, flushed at once (text-only streams get text)."""
    raw = binary(stream)

    def write(text: str) -> None:
        raw.write(text if raw is stream else text.encode("utf-8"))
        raw.flush()

    return write


def emit(lines: list[str], output: str | None) -> None:
    if output:
        write_lines(output, lines)
    else:
        write = writer(sys.stdout)
        for line in lines:
            write(line + "\n")


def stream(translator: LineTranslator, stdin, stdout) -> None:
    """stdin to stdout line by line (bytes, split at "\n" only), each translation flushed before the next line
    is read; the lines that were not valid UTF-8 are named in one warning at the end."""
    write, bad = writer(stdout), []
    for n, raw in enumerate(binary(stdin), 1):
        line, ok = decode_line(raw)
        if not ok:
            bad.append(n)
        write(translator.translate([line], first_line=n)[0] + "\n")
    warn_invalid(bad)


def interactive(translator: LineTranslator) -> None:
    print(f"{translator.describe()}\nType a sentence, Ctrl-D to quit.", file=sys.stderr)
    write, stdin, n = writer(sys.stdout), binary(sys.stdin), 0
    while True:
        write("> ")
        try:
            raw = stdin.readline()
        except KeyboardInterrupt:
            raw = b""
        if not raw:
            print(file=sys.stderr)
            return
        n += 1
        line, ok = decode_line(raw)
        if not ok:
            warn_invalid([n])
        write(translator.translate([line], first_line=n)[0] + "\n")


def arguments(texts: list[str]) -> list[str]:
    """Sentences given as arguments, made valid text (a non-UTF-8 locale decodes bad bytes as surrogates)."""
    cleaned = [clean_text(t) for t in texts]
    warn_invalid([n for n, (_, ok) in enumerate(cleaned, 1) if not ok])
    return [t for t, _ in cleaned]


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        search_from_args(args)
    except ValueError as e:
        p.error(flag_error(e))
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
    if args.glossary and args.engine == "ct2":
        p.error("--glossary needs --engine torch: CTranslate2 has no lexically constrained search")
    if args.glossary and (args.strategy != "beam" or args.beam_size < 2):
        p.error("--glossary needs beam search (--strategy beam, --beam 2 or more)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:  # the subcommand; `translate -- export` translates the word
        from translate.export import main as export_main

        return export_main(argv[1:])
    if argv[:1] == ["import"]:  # `translate import marian SOURCE -o ckpt.pt`
        from translate.importer import main as import_main

        return import_main(argv[1:])
    if argv[:1] == ["serve"]:  # `translate serve ...`; `translate -- serve` translates the word
        from translate.serve import main as serve

        return serve(argv[1:])
    p = build_parser()
    args = p.parse_args(argv)
    check_args(p, args)
    try:
        lines = read_lines(args.input) if args.input else None
        translator = LineTranslator(args)
        if args.text:
            emit(translator.translate(arguments(args.text)), args.output)
        elif lines is not None:
            emit(translator.translate(lines, progress=True), args.output)
        elif sys.stdin.isatty() and not args.output:
            interactive(translator)
        elif args.output:
            lines, bad = split_lines(binary(sys.stdin).read())
            warn_invalid(bad)
            emit(translator.translate(lines, progress=True), args.output)
        else:
            stream(translator, sys.stdin, sys.stdout)
    except (CheckpointError, DeviceError, EngineError, UsageError, SearchError, GlossaryError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `translate < big.txt | head`
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
