"""Stage `mine`: soft-positive mining of prior motions for each target class (paper sec. 4.1)."""

from __future__ import annotations

from pathlib import Path

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.io import atomic_output_dir, write_json
from kinemic.mining import MiningConfig, class_queries, format_top_captions, mine_soft_pairs, mining_metrics
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.report import write_similarity_plot
from kinemic.runtime import StageRun
from kinemic.target_set import PreparedTarget


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--prior", required=True, help="prepared prior (data/prepared/prior)")
    parser.add_argument("--target", required=True, help="prepared target, for its class names (data/prepared/target)")
    parser.add_argument("--out", required=True, help="data/mining")
    parser.add_argument("--plots", required=True, help="plots/mining")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--text-cache", type=Path, default=default_cache_dir())
    parser.add_argument("--top", type=int, default=10, help="captions per class in the printed report")
    args = parse_stage_args(parser, argv)
    run = StageRun("mine", args.params)

    config = config_from_params(MiningConfig, load_section("mining", args.params), "mining")
    prior = PreparedPrior.load(Path(args.prior)).subset(config.splits)
    class_names = PreparedTarget.load(Path(args.target)).class_names
    # Mining compares normalised embeddings (cosine similarity).
    embed = text_embedder(TextSpec(config.encoder, dict(config.encoder_options), normalize=True), args.text_cache)
    captions = prior.captions[["motion_id", "caption"]]
    caption_emb = embed(captions["caption"].tolist())
    prompt_emb = class_queries(embed, class_names, config)
    pairs = mine_soft_pairs(range(len(class_names)), class_names, prompt_emb, captions, caption_emb, config)

    report = format_top_captions(pairs, n=args.top)
    with atomic_output_dir(args.out) as tmp:
        pairs.to_parquet(tmp / "soft_pairs.parquet", index=False)
        (tmp / "top_captions.txt").write_text(report + "\n")
    with atomic_output_dir(args.plots) as tmp:
        write_similarity_plot(pairs, tmp / "similarity.csv", tmp / "similarity.png")
    write_json(args.metrics, mining_metrics(pairs))
    print(report)
    run.finish()


if __name__ == "__main__":
    main()
