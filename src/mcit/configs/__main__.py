"""`python -m mcit.configs NAME`: print the path of a shipped accelerate config (no argument: list them)."""

import sys

from mcit.configs import ACCELERATE, accelerate_config


def main(argv: list[str]) -> int:
    if not argv:
        for path in sorted(ACCELERATE.glob("*.yaml")):
            print(f"{path.stem:18s} {path}")
        return 0
    try:
        print(accelerate_config(argv[0]))
    except FileNotFoundError as error:
        print(f"mcit.configs: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
