"""neuralcodec: learned codecs on one rANS backend, with honest rate/distortion/machine-perception evaluation.

Public API::

    import neuralcodec
    neuralcodec.list_models()
    stats = neuralcodec.encode_file("photo.png", "photo.ncd", quality=3)
    neuralcodec.decode_file("photo.ncd", "photo-decoded.png")
    data = neuralcodec.compress(Image.open("photo.png"), quality=3)  # the bytes `codec encode` writes
    image = neuralcodec.decompress(data)                               # a Pillow image
    codec = neuralcodec.load("hyperprior-ctx3e2-n96")  # a codec object with compress()/decompress()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# MKL's strict reproducibility mode: BLAS results that do not depend on the thread count (small
# convolutions otherwise split their sums across threads), so that a decoder on any number of threads
# reproduces the encoder's reconstruction. MKL reads this at its first call, so it takes effect unless
# the process already ran BLAS work before importing neuralcodec; a user's own setting wins.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
__all__ = ["load", "encode_file", "decode_file", "compress", "decompress", "decompress_batch", "list_models",
           "__version__"]


def list_models() -> list:
    """Every shipped pretrained model (id, codec, description, measured numbers)."""
    from neuralcodec.pretrained import list_models as _list

    return _list()


def load(model: str | None = None, codec: str | None = None, device: str = "cpu"):
    """A codec bound to weights: a shipped model id, a path to a .safetensors file, a codec family's default
    model, or (with neither) the default image codec."""
    from neuralcodec.codecs.registry import load_codec

    return load_codec(model, codec or (None if model else "image-hyperprior"), device)


def encode_file(source: str | Path, target: str | Path, model: str | None = None, codec: str | None = None,
                **options) -> dict:
    """Encode ``source`` into the .ncd file ``target`` (written atomically); returns size/bpp/time stats.

    ``lossless=True`` picks a lossless family for the input (``codec encode --lossless``: any 8-bit grey, RGB
    or RGBA image exactly). ``options`` are those of the chosen family, as ``codec encode`` has them: ``quality``, ``verify``,
    ``device``, ``limits`` (a :class:`neuralcodec.limits.Limits`); images ``refine_steps`` (``--refine``);
    video ``gop``, ``fps``. An option the family does not have is an InputError.
    """
    from neuralcodec.api import encode_path

    return encode_path(Path(source), Path(target), model=model, codec=codec, **options)


def decode_file(source: str | Path, target: str | Path, model: str | None = None, device: str = "cpu") -> dict:
    """Decode the .ncd file ``source`` into ``target`` (format from its extension); returns stats."""
    from neuralcodec.api import decode_path

    return decode_path(Path(source), Path(target), model=model, device=device)



IN_MEMORY = ("compress", "decompress", "decompress_batch")
"""The in-memory API (images to .ncd bytes and back), defined in :mod:`neuralcodec.memory` and imported
at first use, as torch is."""


def __getattr__(name: str) -> Any:
    if name in IN_MEMORY:
        from neuralcodec import memory

        return getattr(memory, name)
    raise AttributeError(f"module 'neuralcodec' has no attribute {name!r}")
