"""The `translate` console command (pyproject.toml [project.scripts]): the allocator first, then the CLI.

translate/cli.py imports torch when it is imported, so the console script enters here: allocator.preload()
re-executes the process under mimalloc (translate/allocator.py) before translate.cli is loaded.
"""

from translate import allocator


def main() -> int:
    allocator.preload()
    from translate.cli import main as cli

    return cli()
