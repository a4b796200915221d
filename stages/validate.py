"""Stage `validate`: build every params section's config before any other stage runs (and deletes its outputs)."""

from __future__ import annotations

import argparse
import sys

from kinemic.io import write_json
from kinemic.params import load_params, setup_logging
from kinemic.validation import validate_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="a marker every later stage descends from (constant content)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        configs = validate_params(load_params(args.params), args.params)
    except ValueError as err:
        sys.exit(f"validate: {err}")
    # Constant content: a valid params change must not make the stages after this one re-run on its account.
    write_json(args.out, {"valid": True})
    print(f"validate: {len(configs)} params sections build their configs")


if __name__ == "__main__":
    main()
