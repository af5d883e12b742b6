"""Ablation of the image context model on the frozen transforms of one hyperprior: the hyperprior alone,
its parameters refitted (one group, one pass: no context), channel groups only, checkerboard only, and
both, each trained with the same schedule, seed and cached latents (``codec train image-context``), then
compared on the held-out crops' validation rates (hyper-latent included, noise-free).

    python benchmarks/context_ablation.py --out runs/ctx-ablation --steps 200 --threads 1 \
        [--variants refit,groups,checkerboard,both] [--latent-cache runs/ctx-latents] [--json FILE]

Each variant's run folder is ``OUT/<variant>``: rerunning resumes, and a run that already has a
validation at ``--steps`` is only read (e.g. a longer run of the same variant, seed and learning rate
whose decay starts later: it is the same run up to there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuralcodec.cli import main as codec_main

GROUPS = "8,8,16,32,64"
VARIANTS = {
    "refit": ["--groups", "128", "--no-checkerboard"],
    "groups": ["--groups", GROUPS, "--no-checkerboard"],
    "checkerboard": ["--groups", "128"],
    "both": ["--groups", GROUPS],
}


def validation_at(run: Path, step: int) -> dict | None:
    """The validation record of a run's log at ``step`` (None when it has none)."""
    log = run / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    return next((r for r in records if "val_mean_saving_percent" in r and r["step"] == step), None)


def summary(runs: dict[str, Path], step: int) -> dict:
    """Per variant: mean saving over levels and per-level bpp at ``step``; plus the hyperprior's own bpp."""
    table: dict = {}
    for name, run in runs.items():
        record = validation_at(run, step)
        levels = sorted(int(k[5:-4]) for k in record if k.startswith("val_L") and k.endswith("_bpp") and "base" not in k)
        table["hyperprior"] = {"bpp": [record[f"val_L{level}_base_bpp"] for level in levels], "mean_saving_percent": 0.0}
        table[name] = {"bpp": [record[f"val_L{level}_bpp"] for level in levels],
                       "mean_saving_percent": record["val_mean_saving_percent"],
                       "saving_percent": [record[f"val_L{level}_saving_percent"] for level in levels]}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ctx-ablation"))
    parser.add_argument("--data", default="../shared/data/train-images")
    parser.add_argument("--init-from", default="hyperprior-vr9c-n96")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--crops", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latent-cache", default=None, help="shared latent cache (default: each run its own)")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here too")
    args = parser.parse_args(argv)
    runs = {}
    for name in args.variants.split(","):
        if name not in VARIANTS:
            print(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})", file=sys.stderr)
            return 2
        run = runs[name] = args.out / name
        if validation_at(run, args.steps) is not None:  # done (a longer run with the same schedule start counts)
            continue
        command = ["train", "image-context", "--init-from", args.init_from, "--data", args.data, "--out", str(run),
                   "--steps", str(args.steps), "--lr", str(args.lr), "--lr-decay-start", "1.0",
                   "--crops", str(args.crops), "--threads", str(args.threads), "--validate-every", str(args.steps),
                   "--checkpoint-every", "50", "--device", "cpu", *VARIANTS[name]]
        if args.latent_cache:
            command += ["--latent-cache", args.latent_cache]
        if codec_main(command) != 0:
            return 1
    table = summary(runs, args.steps)
    print(f"validation at step {args.steps}: mean saving over levels vs the hyperprior (held-out crops)")
    for name, row in table.items():
        print(f"  {name:14s} {row['mean_saving_percent']:+7.2f}%   bpp " + " ".join(f"{b:.4f}" for b in row["bpp"]))
    if args.json:
        args.json.write_text(json.dumps({"step": args.steps, **table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
