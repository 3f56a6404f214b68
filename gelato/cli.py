"""The ``gelato`` command line: one subcommand per stage of the pipeline.

Each stage owns its subcommands in a ``commands`` module with a ``register(subparsers)``
function; this module only wires them together, sets up logging, and turns the
project's own errors into a one-line message and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import warnings

from gelato.io import INTERRUPTED
from gelato.malloc import cap_malloc_arenas

STAGE_COMMANDS = (
    "gelato.commands",
    "gelato.samples.commands",
    "gelato.model.commands",
    "gelato.hls.commands",
    "gelato.hls.oss_commands",
    "gelato.calibration.commands",
    "gelato.calibration.findings_commands",
    "gelato.bench_commands",
)


class GelatoError(RuntimeError):
    """An error the user can fix; the CLI prints its message without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gelato",
        description="GELATO co-design toolkit: samples -> model -> firmware (hls4ml) -> calibration.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in STAGE_COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _on_interrupt(signum: int, frame) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up lines (cuDNN/cuFFT/cuBLAS factories on a machine without a
    # GPU) are errors only in name; Python-side TensorFlow errors still raise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cap_malloc_arenas()  # before any thread exists: repeated threaded passes must not ratchet memory up
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Our own modules log progress at INFO; libraries that log on the root logger
    # (hls4ml, QKeras) only show warnings unless -v is given.
    logging.getLogger("gelato").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:  # Dask's scheduler and workers log every start and stop at INFO on their own handlers
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if not args.verbose:  # two known, harmless Keras 2.14 warnings about QKeras objects and .h5 saving
        warnings.filterwarnings("ignore", message=r"The `keras\.constraints\.serialize\(\)` API", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"You are saving your model as an HDF5 file", category=UserWarning)
    INTERRUPTED.clear()
    previous_handler = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        status = int(args.func(args) or 0)
        if INTERRUPTED.is_set():  # the KeyboardInterrupt was swallowed somewhere on the way
            raise KeyboardInterrupt
        return status
    except (GelatoError, FileNotFoundError, ValueError) as exc:
        if args.verbose:
            raise
        print(f"gelato {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gelato {args.command}: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        INTERRUPTED.clear()  # the flag belongs to this command (tests call main() many times in one process)


if __name__ == "__main__":
    sys.exit(main())
