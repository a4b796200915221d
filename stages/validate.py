"""Stage `validate`: build every params section's config before any other stage runs (and deletes its outputs)."""

from __future__ import annotations

import sys

from kinemic.io import write_json
from kinemic.params import load_params, parse_stage_args, stage_parser
from kinemic.validation import validate_params


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="a marker every later stage descends from (constant content)")
    args = parse_stage_args(parser, argv)
    try:
        configs = validate_params(load_params(args.params), args.params)
    except ValueError as err:
        sys.exit(f"validate: {err}")
    # Constant content: a valid params change must not make the stages after this one re-run on its account.
    write_json(args.out, {"valid": True})
    print(f"validate: {len(configs)} params sections build their configs")


if __name__ == "__main__":
    main()
