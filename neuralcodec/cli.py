"""The `codec` command: thin argument parsing over the library.

Errors neuralcodec raises on purpose print as one line on stderr with exit code 2 (1 for anything
unexpected); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from neuralcodec import __version__
from neuralcodec.codecs import registry
from neuralcodec.errors import InputError, LimitExceededError, NeuralCodecError
from neuralcodec.eval.tasks import TASK_NAMES
from neuralcodec.limits import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, Limits
from neuralcodec.perception.trainers import TRAINERS as PERCEPTION_TRAINERS
from neuralcodec.train.arguments import DefaultsHelpFormatter, Trainer, add_common_arguments, train_config

if TYPE_CHECKING:
    from neuralcodec.batch import Outcome

EPILOG = """examples:
  codec encode photo.png photo.ncd --quality 3 --verify
  codec decode photo.ncd photo-decoded.png
  codec encode photos/ -o encoded/ --codec image-hyperprior   (each image to encoded/NAME.ncd, one process)
  codec info photo.ncd --json
  codec models
  codec train image-hyperprior --data photos/ --out runs/my-codec --steps 20000
  codec encode digit.png digit.ncd              (28x28 grayscale: lossless circuit codec)
  codec encode photo.png photo.ncd --lossless   (any 8-bit grey/RGB/RGBA image, exactly)
  codec encode t10k-images-idx3-ubyte.gz test.ncd && codec decode test.ncd restored-idx3-ubyte.gz
  codec train lossless-pc --data train-images-idx3-ubyte.gz --out runs/my-pc --hidden 32
  codec encode clip.y4m clip.ncd --quality 3 --gop 10 && codec decode clip.ncd decoded.y4m
  codec train video-mc --data clips/ --synthetic-from photos/ --out runs/my-video --steps 1000
  codec eval --codecs jpeg,webp,avif,hevc,hyperprior --data kodak/ --out results/kodak
  codec import-compressai checkpoint.pth.tar --arch mbt2018-mean --out mine.safetensors
"""


ENCODE_USAGE = "codec encode [options] INPUT OUTPUT\n       codec encode [options] INPUT [INPUT ...] -o DIR"
ENCODE_DESCRIPTION = """Compress files into .ncd files with a learned codec.

codec encode INPUT OUTPUT      one input, one .ncd file. A folder INPUT is ONE input: the frames of a
                               video, or same-size grey images for the lossless codec (one file).
codec encode INPUT... -o DIR   each input on its own, to DIR/NAME.ncd, in one process (the model loads
                               once): exactly the files `codec encode INPUT DIR/NAME.ncd` writes. A folder
                               stands for the files directly in it that the --codec / --model family
                               encodes (without either: that any family encodes), each coded on its own;
                               each file goes to the family that claims it, as a single input would.
                               A file that fails is reported on one line and the others are still coded;
                               the exit code is then 2. A progress bar goes to stderr, a summary line
                               (files, bytes, mean bpp, seconds) to stdout; with --json, one JSON line per
                               file and the summary as the last line."""
DECODE_USAGE = "codec decode [options] INPUT OUTPUT\n       codec decode [options] INPUT [INPUT ...] -o DIR"
DECODE_DESCRIPTION = """Decompress .ncd files.

codec decode INPUT OUTPUT      the output format follows OUTPUT's extension.
codec decode INPUT... -o DIR   each .ncd file on its own, in one process, to DIR/NAME in its family's
                               natural format: NAME.png (an image; a single lossless image), NAME.y4m (a
                               video), NAME/ (a folder of PNGs: many lossless images). A folder stands for
                               the .ncd files directly in it. Failures, exit code, progress and summary as
                               for `codec encode INPUT... -o DIR`."""


def _add_encode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress files into .ncd files", usage=ENCODE_USAGE,
                       description=ENCODE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_paths(p, "INPUT: an image (PNG, JPEG, WebP, BMP, TIFF...); a video (Y4M natively; MP4, MKV, AVI... "
                  "through ffmpeg; a folder of colour frames); for the lossless codec an IDX file (*-ubyte[.gz]) "
                  "or a folder of same-size grayscale images. OUTPUT: the .ncd file (written atomically; - writes "
                  "it to standard output, the statistics then go to standard error)")
    p.add_argument("--model", "-m", default=None, help="shipped model id (see `codec models`) or a .safetensors path")
    p.add_argument("--codec", "-c", default=None, choices=[f.name for f in registry.FAMILIES], metavar="FAMILY",
                   help="codec family (default: chosen from the input: " + "; ".join(f"{f.name}: {f.summary}"
                                                                               for f in registry.FAMILIES) + ")")
    p.add_argument("--verify", action="store_true", help="decode after encoding, check bit-exactness, print PSNR")
    p.add_argument("--lossless", action="store_true",
                   help="code exactly: lossless-pc for what it claims (IDX files, 28x28 grey images and their "
                        "folders), lossless-image for any other 8-bit grey, RGB or RGBA image (any size)")
    _add_family_options(p)
    p.add_argument("--device", default="cpu", help="torch device for the transforms (cpu, cuda)")
    _add_limit_options(p)
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def _add_limit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse images and video frames of more than N pixels, checked from their headers before "
                        f"anything is allocated (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES, metavar="N",
                   help=f"refuse videos of more than N frames (default {DEFAULT_MAX_FRAMES:,})")


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(max_pixels=args.max_pixels, max_frames=args.max_frames)


def _add_paths(p: argparse.ArgumentParser, paths_help: str) -> None:
    """The paths of `codec encode` / `codec decode`: INPUT OUTPUT, or inputs and an output folder."""
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help=paths_help)
    p.add_argument("--output-dir", "-o", type=Path, default=None, metavar="DIR",
                   help="code every PATH on its own into this folder (created if missing); see above")


def _input_output(args: argparse.Namespace) -> None:
    """Without --output-dir, the two paths become ``args.input`` and ``args.output``."""
    if len(args.paths) != 2:
        raise InputError(f"expected INPUT OUTPUT, or INPUT... -o DIR; got {len(args.paths)} path(s) and no -o")
    args.input, args.output = args.paths


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
    p = sub.add_parser("decode", help="decompress .ncd files", usage=DECODE_USAGE,
                       description=DECODE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_paths(p, "INPUT: an .ncd file (- reads it from standard input). OUTPUT: e.g. out.png, or for many images an IDX file (*-ubyte[.gz]) or a "
                  "new folder; for video out.y4m, a lossless out.mp4/out.mkv (ffmpeg) or a new folder of PNG "
                  "frames (written atomically)")
    p.add_argument("--model", "-m", default=None, help="weights to decode with, when not a shipped model (.safetensors)")
    p.add_argument("--device", default="cpu", help="torch device for the transforms (cpu, cuda)")
    _add_limit_options(p)
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show the header of an .ncd file")
    p.add_argument("input", type=Path, help="the .ncd file (- reads it from standard input)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list shipped pretrained models")
    p.add_argument("--retired", action="store_true",
                   help="list the retired models instead (not installed with the package; needed only to decode "
                        "files made with them) and where their weights were found")
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


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-compressai", help="convert a CompressAI hyperprior checkpoint into a weights file",
                       description="Convert a CompressAI checkpoint (examples/train.py's, or a saved state_dict) "
                                   "into a single-rate model for `codec encode/decode --model` and `codec eval`. "
                                   "CompressAI need not be installed.")
    p.add_argument("checkpoint", type=Path, help="checkpoint file (read with torch.load(weights_only=True))")
    p.add_argument("--arch", required=True, help="the checkpoint's CompressAI architecture: bmshj2018-hyperprior or "
                                                 "mbt2018-mean (context models are not supported)")
    p.add_argument("--out", type=Path, required=True, help="output weights file (.safetensors; model id: its stem)")
    p.add_argument("--lmbda", type=float, default=None,
                   help="the rate-distortion trade-off the model was trained for, which `codec encode --refine` "
                        "uses (default 0.013, CompressAI's MSE quality 4)")


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
                   help="no task: a folder of images; classify: an IDX images file (labels: --labels, or beside it), "
                        "or an image folder with --arch; face-id: the ORL faces folder; speech-wer: a folder with "
                        "manifest.csv")
    p.add_argument("--out", type=Path, required=True, help="results folder (a rerun resumes from its cache)")
    p.add_argument("--task", choices=TASK_NAMES, default=None, help="downstream machine-perception task to score")
    p.add_argument("--task-model", default=None,
                   help="classify: shipped classifier id or .safetensors (default classifier-mnist); "
                        "face-id: face embedder (default face-embedder-orl)")
    p.add_argument("--labels", default=None, metavar="IDX",
                   help="classify with a shipped classifier: the IDX labels file of --data (default: the "
                        "*-labels-idx1-ubyte[.gz] file beside it)")
    p.add_argument("--arch", default=None, help="classify: a torchvision architecture name (e.g. resnet18) ...")
    p.add_argument("--weights", default=None, help="... and its state-dict file (.pth or .safetensors)")
    p.add_argument("--qualities", action="append", default=[], metavar="CODEC=Q1,Q2,...",
                   help="replace a codec's default knob sweep (repeatable), e.g. --qualities jpeg=1,5,10")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N samples (face-id: the first N faces of each subject)")
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
    for add in (_add_encode, _add_decode, _add_info, _add_models, _add_train, _add_eval, _add_import):
        add(sub)
    return parser


def _print_stats(stats: dict, as_json: bool, stream: TextIO | None = None) -> None:
    if as_json:
        print(json.dumps(stats), file=stream)
        return
    print("  ".join(f"{key}={value}" for key, value in stats.items()), file=stream)


def _run_encode(args: argparse.Namespace) -> None:
    from neuralcodec.api import encode_path, encode_to_bytes

    if args.output_dir is not None:
        _run_batch(args)
        return
    _input_output(args)
    options = dict(model=args.model, codec=args.codec, lossless=args.lossless, verify=args.verify, device=args.device,
                   limits=_limits(args), **_family_option_values(args))
    if str(args.output) == "-":
        data, stats = encode_to_bytes(args.input, **options)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        _print_stats(stats, args.json, sys.stderr)
        return
    _print_stats(encode_path(args.input, args.output, **options), args.json)


def _run_decode(args: argparse.Namespace) -> None:
    from neuralcodec.api import decode_bytes, decode_path

    if args.output_dir is not None:
        _run_batch(args)
        return
    _input_output(args)
    limits = _limits(args)
    if str(args.input) == "-":
        stats = decode_bytes(_stdin_bytes(limits.max_file_bytes), args.output, args.model, args.device, limits)
    else:
        stats = decode_path(args.input, args.output, model=args.model, device=args.device, limits=limits)
    _print_stats(stats, args.json)


def _stdin_bytes(max_bytes: int) -> bytes:
    data = sys.stdin.buffer.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise LimitExceededError(f"standard input holds more than the limit of {max_bytes} bytes")
    return data


def _run_batch(args: argparse.Namespace) -> None:
    """`codec encode|decode INPUT... -o DIR`: every input on its own, one line per failure, a summary."""
    from neuralcodec import batch

    started = time.perf_counter()
    if args.command == "encode":
        sources = batch.encode_sources(args.paths, args.model, args.codec, args.lossless)
        options = {"lossless": args.lossless, "verify": args.verify, "device": args.device, "limits": _limits(args),
                   **_family_option_values(args)}
        code = functools.partial(batch.encode_one, folder=args.output_dir, model=args.model, codec=args.codec,
                                 options=options)
    else:
        sources = batch.decode_sources(args.paths)
        code = functools.partial(batch.decode_one, folder=args.output_dir, model=args.model, device=args.device,
                                 limits=_limits(args))
    batch.output_folder(args.output_dir)

    outcomes = batch.run(sources, code, f"{args.command[:-1]}ing", functools.partial(_report_outcome, args),
                         debug=args.debug)
    result = batch.summary(outcomes, time.perf_counter() - started)
    if args.json:
        print(json.dumps(result))
    else:
        bpp = f", mean {result['mean_bpp']} bpp" if result["mean_bpp"] is not None else ""
        print(f"{args.command}d {result['files']} file(s) into {args.output_dir}, {result['failed']} failed: "
              f"{result['bytes']} bytes{bpp}, {result['seconds']} s")
    if result["failed"]:
        raise NeuralCodecError(f"{result['failed']} of {len(outcomes)} file(s) failed (listed above)")


def _report_outcome(args: argparse.Namespace, outcome: Outcome) -> None:
    """A failure as one line on stderr; with --json, a success as one JSON line on stdout (past the progress bar)."""
    from tqdm import tqdm

    if outcome.error is not None:
        named = "" if str(outcome.source) in outcome.error else f"{outcome.source}: "
        tqdm.write(f"codec {args.command}: error: {named}{outcome.error}", file=sys.stderr)
    elif args.json:
        tqdm.write(json.dumps({"input": str(outcome.source), "output": str(outcome.target), **outcome.stats}),
                   file=sys.stdout)


def _run_info(args: argparse.Namespace) -> None:
    from neuralcodec.container import COMPACT_MAGIC, header_summary, read, read_file
    from neuralcodec.pretrained import compact_models

    models = compact_models()
    if str(args.input) == "-":
        data = _stdin_bytes(Limits().max_file_bytes)
        payload = read(data, compact_models=models)
    else:
        payload = read_file(args.input, compact_models=models)
        with open(args.input, "rb") as handle:
            data = handle.read(len(COMPACT_MAGIC))
    is_compact = data[: len(COMPACT_MAGIC)] == COMPACT_MAGIC
    code = next((c for c, m in models.items() if m.model_id == payload.model_id), None) if is_compact else None
    summary = header_summary(payload, code)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        print(f"{key:>16}: {value}")


def _run_models(args: argparse.Namespace) -> None:
    if args.retired:
        _print_retired_models(args.json)
        return
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


def _print_retired_models(as_json: bool) -> None:
    from neuralcodec.pretrained import MODELS_ENV, retired_models, retired_weights_hint

    models = retired_models()
    rows = [{"id": m.model_id, "codec": m.codec, "replaced_by": m.retired.replaced_by, "why": m.retired.why,
             "file": m.path.name, "sha256": m.sha256, "found": str(m.path) if m.path.is_file() else None,
             "how_to_get": retired_weights_hint(m)} for m in models]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(f"retired models decode only files made with them; their weights are looked for in the folders of "
          f"{MODELS_ENV} and in models-retired/ of a source checkout (or pass the file with --model)")
    for row in rows:
        where = f"found: {row['found']}" if row["found"] else f"not installed: {row['how_to_get']}"
        print(f"{row['id']:<28} {row['codec']:<18} replaced by {row['replaced_by']}; {where}")


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
    if args.task is None and (args.task_model or args.arch or args.weights or args.labels):
        raise InputError("--task-model, --arch, --weights and --labels need a --task")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    task = perception_task(args.task, model=args.task_model, arch=args.arch, weights=args.weights,
                           labels=args.labels) if args.task else None
    result = evaluate(codecs, args.data, args.out, task=task, limit=args.limit, anchor=args.anchor,
                      qualities=_parse_qualities(args.qualities))
    for name, reason in result["unavailable"].items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print((args.out / "summary.md").read_text(encoding="utf-8"))


def _run_import(args: argparse.Namespace) -> None:
    from neuralcodec.codecs.image.compressai_import import import_compressai

    written = import_compressai(args.checkpoint, args.arch, args.out, args.lmbda)
    _print_stats(written, as_json=False)
    print(f"use it: codec encode IMAGE OUT.ncd --model {args.out}")


COMMANDS = {"encode": _run_encode, "decode": _run_decode, "info": _run_info, "models": _run_models,
            "train": _run_train, "eval": _run_eval, "import-compressai": _run_import}


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
    except BrokenPipeError:
        # the reader went away (`codec models --json | head`): stop quietly, as Unix tools do on SIGPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as error:  # unexpected: still one line unless --debug
        if args.debug:
            raise
        print(f"codec {args.command}: internal error: {type(error).__name__}: {error} (rerun with --debug)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
