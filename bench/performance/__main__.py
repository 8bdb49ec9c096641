"""``python -m bench.performance [common arguments]``: every target, one after the other.

Only the arguments all four commands share are accepted (see ``--help``); run a target's own
command for its specific options. Targets run sequentially, never side by side, because each
one's numbers assume the machine is not busy with another.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from bench.performance import encoding, ingestion, query, scale
from bench.performance.common import add_common_args

TARGETS = (query, encoding, ingestion, scale)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(argv) if argv is not None else sys.argv[1:]
    parser = argparse.ArgumentParser(prog="python -m bench.performance", description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.parse_args(words)  # validates (and answers --help) before anything heavy starts
    for target in TARGETS:
        print(f"=== {target.__name__} ===", flush=True)
        target.main(words)
    return 0


if __name__ == "__main__":
    sys.exit(main())
