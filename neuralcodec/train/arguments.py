"""`codec train` plumbing shared by every trainer: the common flags, the TrainConfig they make, export.

A trainer (a codec family's or a perception model's) is a :class:`Trainer`: its name, its defaults, a
function adding its own flags and one running it. The CLI builds one ``codec train NAME`` subcommand per
trainer, so ``codec train NAME --help`` shows exactly that trainer's options with their defaults.
This module imports no torch (``codec --help`` stays fast).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec.errors import InputError

if TYPE_CHECKING:
    from neuralcodec.train.loop import TrainConfig

WEIGHTS_NAME = "model.safetensors"
"""The exported weights file in a run folder."""


@dataclass(frozen=True)
class TrainDefaults:
    """A trainer's defaults for the common flags."""

    batch_size: int
    lr: float
    val_batch_size: int
    steps: int = 100_000


@dataclass(frozen=True)
class Trainer:
    """One ``codec train NAME`` subcommand."""

    name: str
    help: str
    data_help: str
    """What ``--data`` is for this trainer."""
    defaults: TrainDefaults
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Adds the trainer's own flags."""
    run: Callable[[argparse.Namespace, "TrainConfig"], None]
    """Trains (or resumes) and exports to ``args.out``."""
    data_optional: Callable[[argparse.Namespace], bool] = lambda args: False
    """Whether ``--data`` may be left out (the trainer has another source of data)."""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends each option with its default, unless the text already says it or there is none
    (None, an empty string, a switch's False; a default of 0 is shown)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        absent = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
        if "default" in text or absent or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_common_arguments(parser: argparse.ArgumentParser, trainer: Trainer) -> None:
    """The flags every trainer has, with this trainer's defaults."""
    d = trainer.defaults
    parser.add_argument("--data", type=Path, default=None, help=trainer.data_help)
    parser.add_argument("--out", type=Path, required=True,
                        help=f"run folder: checkpoint.pt, log.jsonl, {WEIGHTS_NAME} (a rerun resumes from it)")
    parser.add_argument("--steps", type=int, default=d.steps, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="training batch size")
    parser.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    parser.add_argument("--lr-decay-start", type=float, default=0.85, metavar="FRACTION",
                        help="share of --steps after which the learning rate decays (cosine) to 1%% of --lr")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="share of the data held out for validation")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    parser.add_argument("--validate-every", type=int, default=2000, help="steps between validations")
    parser.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: as many as torch picks)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-amp", action="store_true",
                        help="train in float32 (default: bfloat16 autocast on GPUs and on CPUs with native bf16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, crops and splits")
    parser.add_argument("--model-id", default=None, help="id stored in the exported weights (default: the run folder name)")


def train_config(args: argparse.Namespace, trainer: Trainer) -> "TrainConfig":
    """The :class:`TrainConfig` of parsed ``codec train`` arguments."""
    from neuralcodec.train.loop import TrainConfig

    if args.data is None and not trainer.data_optional(args):
        raise InputError(f"codec train {trainer.name} needs --data")
    config = TrainConfig(
        out_dir=str(args.out), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        lr_decay_start=args.lr_decay_start, checkpoint_every=args.checkpoint_every,
        validate_every=args.validate_every, num_workers=args.workers, seed=args.seed, threads=args.threads,
        val_batch_size=trainer.defaults.val_batch_size, **({"device": args.device} if args.device else {}),
    )
    if args.no_amp:
        config.amp = False
    return config


def export_from_rank_zero(args: argparse.Namespace, export: Callable[[Path, str], object], usage: str,
                          note: str = "") -> Path | None:
    """Export the trained model to ``OUT/model.safetensors`` with ``export(path, model_id)`` and say how to
    use it (``usage`` names the file as ``{path}``; ``note`` follows the path); under torchrun only rank 0 does."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    path = args.out / WEIGHTS_NAME
    export(path, args.model_id or args.out.name)
    print(f"weights written to {path}{note}; use them with `{usage.format(path=path)}`")
    return path
