"""`flexiq-trt` / `python -m flexiq_trt`: top-level parser, lazy subcommand registry, exit codes.

Exit codes: 0 success, 1 a user error (one clear line, no traceback), 2 a usage error (argparse).
Internal bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from flexiq_trt.errors import FlexiqError
from flexiq_trt.version import __version__

# name -> (module, class): imported only when that command runs, so `--help` never pays for ORT/TRT.
COMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("flexiq_trt.cli.commands.convert", "Convert"),
    "compare": ("flexiq_trt.cli.commands.compare", "Compare"),
    "ratio": ("flexiq_trt.cli.commands.ratio", "Ratio"),
    "inspect": ("flexiq_trt.cli.commands.inspect", "Inspect"),
    "build": ("flexiq_trt.cli.commands.build", "Build"),
    "bench": ("flexiq_trt.cli.commands.bench", "Bench"),
    "serve-sim": ("flexiq_trt.cli.commands.serve_sim", "ServeSim"),
    "triton": ("flexiq_trt.cli.commands.triton", "Triton"),
}


class _MissingCommand:
    """Stands in for a command whose module failed to import, and says why when run."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name, self.error = name, error
        self.help = f"(unavailable: {error})"

    def add_args(self, parser: argparse.ArgumentParser) -> None:  # noqa: D102 - protocol
        pass

    def run(self, args: argparse.Namespace) -> int:  # noqa: D102 - protocol
        raise FlexiqError(f"command '{self.name}' is unavailable: {self.error}")


def _load(name: str):
    module, cls = COMMANDS[name]
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError as e:
        return _MissingCommand(name, e)


def build_parser() -> argparse.ArgumentParser:
    """The full parser (every subcommand registers its own arguments)."""
    parser = argparse.ArgumentParser(
        prog="flexiq-trt",
        description="FlexiQ for TensorRT: convert ONNX models to mixed int4/int8 layers whose 4-bit share is "
                    "switched at run time; simulate them on any CPU, compare with Polygraphy, build engines.")
    parser.add_argument("--version", action="version", version=f"flexiq_trt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        cmd = _load(name)
        doc = (getattr(cmd, "help", None) or (type(cmd).__doc__ or "")).strip().splitlines()
        p = sub.add_parser(name, help=doc[0] if doc else "", description="\n".join(doc))
        log = p.add_argument_group("Logging")
        log.add_argument("-v", "--verbose", action="count", default=0, help="more output (-vv for debug)")
        log.add_argument("-q", "--quiet", action="count", default=0, help="less output")
        log.add_argument("--log-file", default=None, help="also write the log to this file")
        cmd.add_args(p)
        p.set_defaults(_command=cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, configure logging, run the command, and map errors to exit codes."""
    from flexiq_trt import log

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    log.configure(args.verbose - args.quiet, args.log_file)
    logger = log.get_logger("flexiq_trt.cli")
    start = time.perf_counter()
    try:
        status = args._command.run(args)
    except FlexiqError as e:
        print(f"flexiq-trt {args.command}: error: {e}", file=sys.stderr)
        logger.info("FAILED %s after %.1fs", args.command, time.perf_counter() - start)
        return 1
    except KeyboardInterrupt:
        print(f"flexiq-trt {args.command}: interrupted", file=sys.stderr)
        return 130
    logger.info("%s %s in %.1fs", "PASSED" if status == 0 else "FAILED", args.command, time.perf_counter() - start)
    return status


if __name__ == "__main__":
    sys.exit(main())
