"""The `codec` command: thin argument parsing over the library.

Errors neuralcodec raises on purpose print as one line on stderr with exit code 2 (1 for anything
unexpected); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from neuralcodec import __version__
from neuralcodec.codecs import registry
from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.eval.tasks import TASK_NAMES
from neuralcodec.perception.trainers import TRAINERS as PERCEPTION_TRAINERS
from neuralcodec.train.arguments import DefaultsHelpFormatter, Trainer, add_common_arguments, train_config

EPILOG = """examples:
  codec encode photo.png photo.ncd --quality 3 --verify
  codec decode photo.ncd photo-decoded.png
  codec info photo.ncd --json
  codec models
  codec train image-hyperprior --data photos/ --out runs/my-codec --steps 20000
  codec encode digit.png digit.ncd              (28x28 grayscale: lossless circuit codec)
  codec encode t10k-images-idx3-ubyte.gz test.ncd && codec decode test.ncd restored-idx3-ubyte.gz
  codec train lossless-pc --data train-images-idx3-ubyte.gz --out runs/my-pc --hidden 32
  codec encode clip.y4m clip.ncd --quality 3 --gop 10 && codec decode clip.ncd decoded.y4m
  codec train video-st --data clips/ --synthetic-from photos/ --out runs/my-video --steps 4000
  codec eval --codecs jpeg,webp,avif,hevc,hyperprior --data kodak/ --out results/kodak
"""


def _add_encode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress a file into an .ncd file",
                       description="Compress an image into an .ncd file with a learned codec.")
    p.add_argument("input", type=Path, help="input image (PNG, JPEG, WebP, BMP, TIFF...); a video (Y4M natively; MP4, "
                                            "MKV, AVI... through ffmpeg; a folder of colour frames); "
                                            "for the lossless codec an IDX file (*-ubyte[.gz]) or a folder of "
                                            "same-size grayscale images")
    p.add_argument("output", type=Path, help="output .ncd file (written atomically)")
    p.add_argument("--model", "-m", default=None, help="shipped model id (see `codec models`) or a .safetensors path")
    p.add_argument("--codec", "-c", default=None, choices=[f.name for f in registry.FAMILIES], metavar="FAMILY",
                   help="codec family (default: chosen from the input: " + "; ".join(f"{f.name}: {f.summary}"
                                                                               for f in registry.FAMILIES) + ")")
    p.add_argument("--verify", action="store_true", help="decode after encoding, check bit-exactness, print PSNR")
    _add_family_options(p)
    p.add_argument("--device", default="cpu", help="torch device for the transforms (cpu, cuda)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def _family_cli_options() -> dict[str, dataclasses.Field]:
    """The families' ``cli_option`` fields by name (families sharing a name share the flag: the first wins)."""
    options: dict[str, dataclasses.Field] = {}
    for family in registry.FAMILIES:
        for option in dataclasses.fields(family.options):
            if "cli" in option.metadata:
                options.setdefault(option.name, option)
    return options


def _add_family_options(p: argparse.ArgumentParser) -> None:
    """One flag per family option; a flag the user leaves out is absent from the parsed arguments, so each
    family keeps its own default."""
    for name, option in _family_cli_options().items():
        flags, kwargs = option.metadata["cli"]
        p.add_argument(*flags, dest=name, default=argparse.SUPPRESS, **kwargs)


def _family_option_values(args: argparse.Namespace) -> dict:
    """The family options the user gave on the command line."""
    return {name: getattr(args, name) for name in _family_cli_options() if hasattr(args, name)}


def _add_decode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decompress an .ncd file",
                       description="Decompress an .ncd file; the output format follows the extension.")
    p.add_argument("input", type=Path, help="input .ncd file")
    p.add_argument("output", type=Path, help="output file, e.g. out.png, or for many images an IDX file "
                                             "(*-ubyte[.gz]) or a new folder; for video out.y4m, a lossless "
                                             "out.mp4/out.mkv (ffmpeg) or a new folder of PNG frames "
                                             "(written atomically)")
    p.add_argument("--model", "-m", default=None, help="weights to decode with, when not a shipped model (.safetensors)")
    p.add_argument("--device", default="cpu", help="torch device for the transforms (cpu, cuda)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show the header of an .ncd file")
    p.add_argument("input", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list shipped pretrained models")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _trainers() -> list[Trainer]:
    """Every `codec train` subcommand: the codec families' trainers, then the perception models'."""
    return [trainer for f in registry.FAMILIES for trainer in f.trainers] + list(PERCEPTION_TRAINERS)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a codec on your own data",
                       description="Train a codec family (or a perception model for `codec eval --task`) on your "
                                   "data. Resumes from OUT/checkpoint.pt. `codec train NAME --help` lists NAME's "
                                   "options.")
    trainers = p.add_subparsers(dest="trainer", required=True, metavar="NAME")
    for trainer in _trainers():
        t = trainers.add_parser(trainer.name, help=trainer.help, description=f"Train {trainer.help}.",
                                formatter_class=DefaultsHelpFormatter)
        add_common_arguments(t, trainer)
        trainer.add_arguments(t)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="sweep codecs: rate, distortion, BD-rate and machine-perception quality",
                       description="Encode and decode every sample with each codec at each of its quality settings; "
                                   "with --task, also score a downstream model on the decoded samples (and on the "
                                   "originals, as the reference). Writes rows.jsonl (resumable cache), "
                                   "results.json/.csv, plots and summary.md to --out.",
                       epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", default="jpeg,webp,avif,hyperprior",
                   help="comma-separated. Images: jpeg, webp, avif, jpeg2000 (Pillow); jpegxl, hevc, av1 (ffmpeg); "
                        "hyperprior (the default learned model), a shipped model id or a .safetensors path, each optionally "
                        "with +refineN (encoder-side latent refinement, N steps: hyperprior+refine20). "
                        "Audio (speech-wer): opus, mp3 (ffmpeg)")
    p.add_argument("--data", type=Path, default=None,
                   help="no task: a folder of images; classify: an IDX images file with labels beside it, or an "
                        "image folder with --arch; face-id: the ORL faces folder; speech-wer: a folder with manifest.csv")
    p.add_argument("--out", type=Path, required=True, help="results folder (a rerun resumes from its cache)")
    p.add_argument("--task", choices=TASK_NAMES, default=None, help="downstream machine-perception task to score")
    p.add_argument("--task-model", default=None,
                   help="classify: shipped classifier id or .safetensors (default classifier-mnist); "
                        "face-id: face embedder (default face-embedder-orl)")
    p.add_argument("--arch", default=None, help="classify: a torchvision architecture name (e.g. resnet18) ...")
    p.add_argument("--weights", default=None, help="... and its state-dict file (.pth or .safetensors)")
    p.add_argument("--qualities", action="append", default=[], metavar="CODEC=Q1,Q2,...",
                   help="replace a codec's default knob sweep (repeatable), e.g. --qualities jpeg=1,5,10")
    p.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    p.add_argument("--anchor", default=None, help="codec the BD-rates are measured against (default: the first)")


EVAL_EPILOG = """examples:
  codec eval --codecs jpeg,webp,avif,hevc,hyperprior --data kodak/ --out results/kodak
  codec eval --task face-id --codecs jpeg,webp,hyperprior --data ../shared/data/faces/orl --out results/faces
  codec eval --task classify --data mnist/t10k-images-idx3-ubyte.gz --limit 1000 --codecs jpeg,webp --out results/mnist
  codec eval --task classify --arch resnet18 --weights resnet18.pth --data photos/ --codecs jpeg --out results/cls
  codec eval --task speech-wer --codecs opus,mp3 --data ../shared/data/speech --out results/speech
"""


def _parse_qualities(specs: list[str]) -> dict[str, list[float]]:
    """``["jpeg=1,5,10"]`` -> ``{"jpeg": [1.0, 5.0, 10.0]}``."""
    result = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        try:
            result[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise InputError(f"--qualities {spec!r}: expected CODEC=Q1,Q2,... with numbers") from None
        if not name.strip() or not result[name.strip()]:
            raise InputError(f"--qualities {spec!r}: expected CODEC=Q1,Q2,...")
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codec", description="Learned codecs: encode/decode files, train codecs, inspect .ncd files.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"neuralcodec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_encode, _add_decode, _add_info, _add_models, _add_train, _add_eval):
        add(sub)
    return parser


def _print_stats(stats: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(stats))
        return
    print("  ".join(f"{key}={value}" for key, value in stats.items()))


def _run_encode(args: argparse.Namespace) -> None:
    from neuralcodec.api import encode_path

    stats = encode_path(args.input, args.output, model=args.model, codec=args.codec, verify=args.verify,
                        device=args.device, **_family_option_values(args))
    _print_stats(stats, args.json)


def _run_decode(args: argparse.Namespace) -> None:
    from neuralcodec.api import decode_path

    _print_stats(decode_path(args.input, args.output, model=args.model, device=args.device), args.json)


def _run_info(args: argparse.Namespace) -> None:
    from neuralcodec.container import COMPACT_MAGIC, header_summary, read_file
    from neuralcodec.pretrained import compact_models

    models = compact_models()
    payload = read_file(args.input, compact_models=models)
    with open(args.input, "rb") as handle:
        is_compact = handle.read(len(COMPACT_MAGIC)) == COMPACT_MAGIC
    code = next((c for c, m in models.items() if m.model_id == payload.model_id), None) if is_compact else None
    summary = header_summary(payload, code)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        print(f"{key:>16}: {value}")


def _run_models(args: argparse.Namespace) -> None:
    from neuralcodec.pretrained import list_models

    models = list_models()
    if args.json:
        print(json.dumps([{"id": m.model_id, "codec": m.codec, "description": m.description,
                           "default_for": list(m.default_for), "measured": m.measured} for m in models], indent=2))
        return
    if not models:
        print("no pretrained models are installed")
    for m in models:
        default = " (default)" if m.default_for else ""
        print(f"{m.model_id:<28} {m.codec:<18}{default} {m.description}")


def _run_train(args: argparse.Namespace) -> None:
    trainer = next(t for t in _trainers() if t.name == args.trainer)
    trainer.run(args, train_config(args, trainer))


def _run_eval(args: argparse.Namespace) -> None:
    from neuralcodec.eval.runner import evaluate
    from neuralcodec.eval.tasks import perception_task

    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    if not codecs:
        raise InputError("--codecs is empty")
    if args.task is None and args.data is None:
        raise InputError("--data is required (a folder of images) unless a --task brings its own")
    if args.task is None and (args.task_model or args.arch or args.weights):
        raise InputError("--task-model, --arch and --weights need a --task")
    task = perception_task(args.task, model=args.task_model, arch=args.arch, weights=args.weights) if args.task else None
    result = evaluate(codecs, args.data, args.out, task=task, limit=args.limit, anchor=args.anchor,
                      qualities=_parse_qualities(args.qualities))
    for name, reason in result["unavailable"].items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print((args.out / "summary.md").read_text(encoding="utf-8"))


COMMANDS = {"encode": _run_encode, "decode": _run_decode, "info": _run_info, "models": _run_models,
            "train": _run_train, "eval": _run_eval}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `codec` console script."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except NeuralCodecError as error:
        if args.debug:
            raise
        print(f"codec {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"codec {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # unexpected: still one line unless --debug
        if args.debug:
            raise
        print(f"codec {args.command}: internal error: {type(error).__name__}: {error} (rerun with --debug)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
