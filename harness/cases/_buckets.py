"""``python -m harness.cases._buckets MODULE:FUNCTION SALT``: buckets of the keys on stdin, one a line.

The split case runs this in two fresh interpreters with different ``PYTHONHASHSEED``s: stickiness across
processes can only be seen from two processes. Prints one JSON list of buckets, in the keys' order.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import cast

from harness.cases._seams import resolve


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m harness.cases._buckets MODULE:FUNCTION SALT < keys", file=sys.stderr)
        return 2
    bucket = cast(Callable[..., int], resolve(args[0]))
    salt = args[1]
    keys = sys.stdin.read().splitlines()
    print(json.dumps([bucket(key, salt=salt) for key in keys]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
