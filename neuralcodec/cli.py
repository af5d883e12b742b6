"""The `codec` command: thin argument parsing over the library.

Errors neuralcodec raises on purpose print as one line on stderr with exit code 2 (1 for anything
unexpected); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec import __version__
from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.eval.tasks import TASK_NAMES

if TYPE_CHECKING:  # the CLI imports torch-heavy modules lazily, per command
    from neuralcodec.train.loop import TrainConfig

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
                                            "MKV, AVI... through ffmpeg; a folder of frames with --codec video-st); "
                                            "for the lossless codec an IDX file (*-ubyte[.gz]) or a folder of "
                                            "same-size grayscale images")
    p.add_argument("output", type=Path, help="output .ncd file (written atomically)")
    p.add_argument("--quality", "-q", type=float, default=None,
                   help="rate knob of variable-rate models: 1 (smallest file) to the model's number of levels; "
                        "fractions interpolate (default: the middle)")
    p.add_argument("--model", "-m", default=None, help="shipped model id (see `codec models`) or a .safetensors path")
    p.add_argument("--codec", "-c", default=None, help="codec family (default: chosen from the input type)")
    p.add_argument("--verify", action="store_true", help="decode after encoding, check bit-exactness, print PSNR")
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="image models: optimize the latents for this image with STEPS gradient steps (about 1 s "
                        "each for a 768x512 image on 2 CPU cores; 20 saved 8%% of the rate at equal PSNR on "
                        "Kodak, see the README); kept only when that lowers the rate-distortion cost; decoding "
                        "is unchanged (default 0: off)")
    p.add_argument("--gop", type=int, default=None,
                   help="video: group-of-pictures length, frames from one intra frame to the next (default 10)")
    p.add_argument("--fps", type=float, default=None,
                   help="video from a folder of frames (--codec video-st): its frame rate (default 25)")
    p.add_argument("--device", default="cpu", help="torch device for the transforms (cpu, cuda)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


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


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a codec on your own data",
                       description="Train a codec family on a folder of your data. Resumes from OUT/checkpoint.pt.")
    p.add_argument("family", choices=["image-hyperprior", "video-st", "lossless-pc", "classifier", "face-embedder"],
                   help="codec family to train, or a perception model for `codec eval --task`")
    p.add_argument("--data", type=Path, default=None,
                   help="image-hyperprior: folder of training images (searched recursively) or a .txt list of image "
                        "paths; video-st: a folder of clips (folders of frames, videos), optional with "
                        "--synthetic-from; lossless-pc: an IDX "
                        "file or a folder of same-size 8-bit grayscale images; classifier: an IDX images file with "
                        "its labels file beside it; face-embedder: the ORL faces folder (labels.csv), subjects "
                        "29-40 held out")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, log.jsonl, model.safetensors")
    p.add_argument("--lmbda", type=float, action="append", default=None,
                   help="rate-distortion trade-off; repeat for a variable-rate model (default: 6 levels 0.0018-0.0483)")
    p.add_argument("--metric", choices=["mse", "ms-ssim"], default="mse", help="distortion of the loss")
    p.add_argument("--channels", type=int, default=128, help="transform width N")
    p.add_argument("--latent-channels", type=int, default=192, help="latent channels M")
    p.add_argument("--scale-only", action="store_true", help="scale hyperprior (Ballé 2018) instead of mean-scale")
    p.add_argument("--whole-images", action="store_true",
                   help="image-hyperprior: train on whole same-size images (e.g. faces) instead of random crops")
    p.add_argument("--task-loss", default=None, metavar="MODEL",
                   help="image-hyperprior: add a task-aware distortion, 1 - cosine between this frozen classifier's "
                        "or face embedder's outputs on x and on the reconstruction (shipped id or .safetensors)")
    p.add_argument("--task-layers", default="", metavar="NAMES",
                   help="with --task-loss: comma-separated submodules of the task network (e.g. features.3) whose "
                        "outputs are compared too, averaged with the final output")
    p.add_argument("--task-weight", type=float, default=0.0,
                   help="alpha: weight of the task-aware distortion, in units of 255^2*MSE (with --task-loss)")
    p.add_argument("--hidden", type=int, default=32, help="lossless-pc: latent states per pixel (H)")
    p.add_argument("--synthetic-from", type=Path, default=None, metavar="PHOTOS",
                   help="video-st: also train on clips synthesized from these photos (pans, zooms, rotations, "
                        "brightness drift)")
    p.add_argument("--synthetic-clips", type=int, default=1500, help="video-st: number of synthetic clips")
    p.add_argument("--clip-length", type=int, default=3, help="video-st: frames per training clip (I + P-frames)")
    p.add_argument("--prior-width", type=int, default=128, help="video-st: width of the prior networks")
    p.add_argument("--no-temporal", action="store_true", help="video-st ablation: no temporal prior")
    p.add_argument("--no-spatial", action="store_true", help="video-st ablation: no checkerboard spatial context")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: 8 image-hyperprior, 256 lossless-pc, 128 classifier, 32 face-embedder")
    p.add_argument("--crop", type=int, default=256, help="random crop size (multiple of 64)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-4 image-hyperprior, "
                                                              "0.05 lossless-pc, 2e-3 classifier and face-embedder)")
    p.add_argument("--lr-decay-start", type=float, default=0.85, metavar="FRACTION",
                   help="share of --steps after which the learning rate decays (cosine) to 1%% of --lr (default 0.85)")
    p.add_argument("--width", type=int, default=None, help="classifier/face-embedder: channel width (default 24/16)")
    p.add_argument("--architecture", choices=["strided", "residual"], default="strided",
                   help="face-embedder: network design (train one of each to check results on an unseen recognizer)")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of files held out for validation")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--validate-every", type=int, default=2000)
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-amp", action="store_true",
                   help="train in float32 (default: bfloat16 autocast on GPUs and on CPUs with native bf16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-from", default=None,
                   help="start from these weights (shipped model id or .safetensors) instead of random ones; "
                        "video-st: the frozen image model whose transforms code the frames (default: the shipped "
                        "image-hyperprior; a shipped model is referenced by the exported weights, not copied)")
    p.add_argument("--model-id", default=None, help="id stored in the exported weights (default: the run folder name)")


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

    stats = encode_path(args.input, args.output, model=args.model, codec=args.codec, quality=args.quality,
                        verify=args.verify, device=args.device, gop=args.gop, fps=args.fps,
                        refine_steps=args.refine)
    _print_stats(stats, args.json)


def _run_decode(args: argparse.Namespace) -> None:
    from neuralcodec.api import decode_path

    _print_stats(decode_path(args.input, args.output, model=args.model, device=args.device), args.json)


def _run_info(args: argparse.Namespace) -> None:
    from neuralcodec.codecs.registry import compact_code, compact_models
    from neuralcodec.container import COMPACT_MAGIC, header_summary, read_file

    payload = read_file(args.input, compact_models=compact_models())
    with open(args.input, "rb") as handle:
        is_compact = handle.read(len(COMPACT_MAGIC)) == COMPACT_MAGIC
    summary = header_summary(payload, compact_code(payload.model_id, payload.weights_hash) if is_compact else None)
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
    from neuralcodec.train.loop import TrainConfig

    defaults = FAMILY_TRAINING_DEFAULTS[args.family]
    config = TrainConfig(
        out_dir=str(args.out), steps=args.steps, batch_size=args.batch_size or defaults["batch_size"],
        lr=args.lr or defaults["lr"], lr_decay_start=args.lr_decay_start, checkpoint_every=args.checkpoint_every,
        validate_every=args.validate_every, num_workers=args.workers, seed=args.seed, threads=args.threads,
        val_batch_size=defaults["val_batch_size"], **({"device": args.device} if args.device else {}),
    )
    if args.no_amp:
        config.amp = False
    if args.data is None and not (args.family == "video-st" and args.synthetic_from is not None):
        raise InputError(f"codec train {args.family} needs --data")
    trainers = {"image-hyperprior": _train_image_hyperprior, "video-st": _train_video, "lossless-pc": _train_lossless_pc,
                "classifier": _train_perception_model, "face-embedder": _train_perception_model}
    trainers[args.family](args, config)


FAMILY_TRAINING_DEFAULTS = {
    "image-hyperprior": {"batch_size": 8, "lr": 1e-4, "val_batch_size": 1},
    "video-st": {"batch_size": 16, "lr": 5e-4, "val_batch_size": 32},
    "lossless-pc": {"batch_size": 256, "lr": 0.05, "val_batch_size": 256},
    "classifier": {"batch_size": 128, "lr": 2e-3, "val_batch_size": 512},
    "face-embedder": {"batch_size": 32, "lr": 2e-3, "val_batch_size": 128},
}


def _train_perception_model(args: argparse.Namespace, config: TrainConfig) -> None:
    import numpy as np

    from neuralcodec.perception import data, networks, training
    from neuralcodec.perception.weights import export_perception_model

    if args.family == "classifier":
        labelled = data.read_idx_pair(args.data)
        val_mask = np.random.default_rng(args.seed).random(len(labelled.labels)) < args.val_fraction
        model_config = networks.ClassifierConfig(height=labelled.images.shape[1], width=labelled.images.shape[2],
                                                 classes=int(labelled.labels.max()) + 1, width_multiplier=args.width or 24)
        model = training.train_classifier(labelled.subset(~val_mask), labelled.subset(val_mask), config, model_config)
    else:
        train, held_out = data.split_faces(data.read_orl_faces(args.data))
        model_config = networks.FaceEmbedderConfig(height=train.images.shape[1], width=train.images.shape[2],
                                                   width_multiplier=args.width or 16, architecture=args.architecture)
        model = training.train_face_embedder(train, held_out, config, model_config)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    path = args.out / "model.safetensors"
    export_perception_model(model, path, model_id=args.model_id or args.out.name)
    print(f"weights written to {path}; use them with `codec eval --task {PERCEPTION_TASK_OF[args.family]} --task-model {path}`")


PERCEPTION_TASK_OF = {"classifier": "classify", "face-embedder": "face-id"}


def _train_video(args: argparse.Namespace, config: TrainConfig) -> None:
    from neuralcodec.codecs.registry import names_weights_file
    from neuralcodec.pretrained import default_model
    from neuralcodec.train.export import export_video_model
    from neuralcodec.train.video import train_video

    image_model = args.init_from or default_model("image-hyperprior").model_id
    model = train_video(config, image_model, clips_root=args.data,
                        photos_root=args.synthetic_from, synthetic_count=args.synthetic_clips, length=args.clip_length,
                        crop=args.crop, hidden=args.prior_width, temporal=not args.no_temporal,
                        spatial=not args.no_spatial, val_fraction=args.val_fraction)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    path = args.out / "model.safetensors"
    shipped = not names_weights_file(image_model)  # train_video loaded it, so it is a shipped id
    export_video_model(model, path, model_id=args.model_id or args.out.name,
                       image_model_id=image_model if shipped else None)
    print(f"weights written to {path}" + (f" (they name the shipped image model {image_model!r} instead of "
                                          "holding a copy)" if shipped else "")
          + f"; use them with `codec encode VIDEO OUT.ncd --model {path}`")


def _train_lossless_pc(args: argparse.Namespace, config: TrainConfig) -> None:
    from neuralcodec.train.lossless import export_lossless_pc, train_lossless_pc

    model = train_lossless_pc(args.data, config, hidden=args.hidden, val_fraction=args.val_fraction)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    path = args.out / "model.safetensors"
    export_lossless_pc(model, path, model_id=args.model_id or args.out.name)
    print(f"weights written to {path}; use them with `codec encode IMAGES OUT.ncd --model {path}`")


def _train_image_hyperprior(args: argparse.Namespace, config: TrainConfig) -> None:
    from neuralcodec.codecs.image_hyperprior import DEFAULT_LAMBDAS, HyperpriorConfig
    from neuralcodec.train.export import export_image_hyperprior
    from neuralcodec.train.image import train_image_hyperprior

    model_config = HyperpriorConfig(n=args.channels, m=args.latent_channels, mean_scale=not args.scale_only,
                                    lambdas=tuple(args.lmbda) if args.lmbda else DEFAULT_LAMBDAS)
    if (args.task_loss is None) != (args.task_weight == 0):
        raise InputError("--task-loss and a non-zero --task-weight go together")
    task_layers = tuple(name for name in args.task_layers.split(",") if name)
    if task_layers and args.task_loss is None:
        raise InputError("--task-layers needs --task-loss")
    model = train_image_hyperprior(args.data, config, model_config, metric=args.metric, crop=args.crop,
                                   val_fraction=args.val_fraction, init_from=args.init_from,
                                   whole_images=args.whole_images, task_loss=args.task_loss,
                                   task_weight=args.task_weight, task_layers=task_layers)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun only rank 0 exports
    path = args.out / "model.safetensors"
    export_image_hyperprior(model, path, model_id=args.model_id or args.out.name)
    print(f"weights written to {path}; use them with `codec encode IMG OUT.ncd --model {path}`")


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
