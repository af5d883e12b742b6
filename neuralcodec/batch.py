"""Many files in one process: ``codec encode IN... -o DIR`` and ``codec decode IN... -o DIR``.

Each input is coded on its own by the single-file path (:func:`~neuralcodec.api.encode_path`,
:func:`~neuralcodec.api.decode_payload`), so every output is byte-identical to a single-file run; the
codecs they build are kept (:func:`~neuralcodec.api.bound_codec`), so a model loads once. A folder
among the inputs stands for the files directly in it that are to be coded. A file that fails is
reported and the others go on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from neuralcodec import container
from neuralcodec.api import decode_payload, encode_path
from neuralcodec.codecs.base import SNIFF_NO
from neuralcodec.codecs.registry import FAMILIES, LOSSLESS_FAMILIES, family, resolve_weights
from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.limits import Limits
from neuralcodec.pretrained import compact_models

NCD_SUFFIX = ".ncd"


@dataclass
class Outcome:
    """One input of a batch: where it went and its statistics, or why it failed."""

    source: Path
    target: Path | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def encode_sources(paths: list[Path], model: str | None, codec: str | None, lossless: bool = False) -> list[Path]:
    """The files to encode: ``paths``, a folder replaced by the files in it that the family of ``codec`` /
    ``model`` (without either: any family; with ``lossless``: any lossless family) encodes."""
    chosen = codec or (resolve_weights(model, None).codec if model else None)
    families = [family(chosen)] if chosen else list(LOSSLESS_FAMILIES if lossless else FAMILIES)
    return _expanded(paths, lambda p: any(f.sniff(p) != SNIFF_NO for f in families),
                     f"no file {'that ' + chosen + ' encodes' if chosen else 'a codec encodes'}")


def decode_sources(paths: list[Path]) -> list[Path]:
    """The files to decode: ``paths``, a folder replaced by the .ncd files in it."""
    return _expanded(paths, lambda p: p.suffix.lower() == NCD_SUFFIX, f"no {NCD_SUFFIX} file")


def _expanded(paths: list[Path], wanted: Callable[[Path], bool], none_found: str) -> list[Path]:
    sources: list[Path] = []
    for path in paths:
        if not path.is_dir():
            sources.append(path)  # a missing or unusable file fails on its own, with the others coded
            continue
        files = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".") and wanted(p)]
        if not files:
            raise InputError(f"{path}: {none_found} in this folder")
        sources.extend(files)
    names: dict[str, Path] = {}
    for source in sources:
        other = names.setdefault(source.stem.casefold(), source)
        if other is not source:
            raise InputError(f"{other} and {source} would write the same output ({source.stem}); "
                             f"rename one or code them in separate runs")
    return sources


def output_folder(folder: Path) -> None:
    """Create ``folder`` when missing; InputError when it is a file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"output folder {folder} is a file") from None


def encode_one(source: Path, folder: Path, model: str | None, codec: str | None,
               options: dict[str, Any]) -> Outcome:
    """Encode ``source`` to ``folder``/NAME.ncd, as ``codec encode SOURCE FOLDER/NAME.ncd`` would."""
    target = folder / (source.stem + NCD_SUFFIX)
    return Outcome(source, target, encode_path(source, target, model=model, codec=codec, **options))


def decode_one(source: Path, folder: Path, model: str | None = None, device: str = "cpu",
               limits: Limits = Limits()) -> Outcome:
    """Decode ``source`` to ``folder``/NAME with the suffix of its family's natural output (a PNG for an
    image...), as ``codec decode SOURCE FOLDER/NAME.png`` would."""
    payload = container.read_file(source, limits, compact_models())
    target = folder / (source.stem + family(payload.codec).decoded_suffix(payload))
    stats = decode_payload(payload, target, model, device, limits)
    return Outcome(source, target, {"bytes": source.stat().st_size, **stats})


def run(sources: list[Path], code: Callable[[Path], Outcome], action: str, report: Callable[[Outcome], None],
        debug: bool = False) -> list[Outcome]:
    """``code`` every source in turn under a progress bar (stderr); a failure becomes an Outcome with its
    one-line error (``debug``: it is raised instead). ``report`` sees every outcome as it comes."""
    outcomes = []
    with tqdm(sources, desc=action, unit="file", file=sys.stderr, dynamic_ncols=True) as bar:
        for source in bar:
            bar.set_postfix_str(source.name, refresh=False)
            try:
                outcome = code(source)
            except NeuralCodecError as error:
                if debug:
                    raise
                outcome = Outcome(source, error=str(error))
            except Exception as error:  # unexpected: reported like the CLI reports it, the others go on
                if debug:
                    raise
                outcome = Outcome(source, error=f"internal error: {type(error).__name__}: {error} (rerun with --debug)")
            outcomes.append(outcome)
            report(outcome)
    return outcomes


def summary(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    """Files coded and failed, total bytes of the .ncd files, mean bits per pixel over the files that
    have one, and the batch's wall time."""
    done = [o for o in outcomes if o.error is None]
    bpps = [o.stats["bpp"] for o in done if "bpp" in o.stats]
    return {"files": len(done), "failed": len(outcomes) - len(done), "bytes": sum(o.stats["bytes"] for o in done),
            "mean_bpp": round(sum(bpps) / len(bpps), 5) if bpps else None, "seconds": round(seconds, 3)}

