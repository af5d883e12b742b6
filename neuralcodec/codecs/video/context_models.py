"""The image context model that a video file names for its I-frames.

A video model that names its I-frame hyperprior (id + sha256, :mod:`neuralcodec.codecs.image.reference`)
can code its I-frames with a shipped image context model built on that same hyperprior
(:mod:`neuralcodec.codecs.image.context`), as that model codes images: same transforms and hyper-latent,
a better entropy model of the latent. A file coded so names the context model in its metadata
(``intra_context``: ``"<model id>@<the first 16 hex digits of its sha256>"``); the decoder accepts only a
shipped context model on the video model's own hyperprior, so a file cannot make it load anything else.

(The same context networks over the P-frame residual coder, which was fine-tuned from that hyperprior,
estimate 3-5% fewer residual bits, but their means are an image latent's: in an exploratory run on the
training clips the frames lost 0.1-0.15 dB at the same settings, more than the rate saved. Not used.)
"""

from __future__ import annotations

from neuralcodec.codecs.image.codec import model_from_weights
from neuralcodec.codecs.image.context import CONTEXT_KEY, ImageContextModel
from neuralcodec.codecs.image.reference import IMAGE_REFERENCE_KEY
from neuralcodec.errors import CorruptFileError, ModelMismatchError, UnknownModelError
from neuralcodec.pretrained import HASH_BYTES, get_model_info, load_pretrained

CONTEXT_MODEL = "hyperprior-ctx2-vr9c"
"""The context model the encoder codes I-frames with when the video model's I-frame hyperprior is the one
it is built on: -2.0% / -0.1% / -1.1% BD-rate on the Vimeo, synthetic-motion and moving-object training
clips (one 7-frame group each, the entry's ~50 bytes of metadata included; ``benchmarks/video_mc_tools.py``)."""


def context_entry(model_id: str, image_reference: dict | None) -> str | None:
    """The metadata entry (``id@hash``) naming the shipped context model ``model_id`` when it is built on the
    hyperprior ``image_reference`` names, else None (including when it is not installed)."""
    try:
        info = get_model_info(model_id)
    except UnknownModelError:
        return None
    if image_reference is None or not info.path.is_file() or CONTEXT_KEY not in info.config \
            or info.config.get(IMAGE_REFERENCE_KEY) != image_reference:
        return None
    return f"{model_id}@{info.weights_hash.hex()}"


def named_context_model(entry: object, image_reference: dict | None) -> ImageContextModel:
    """The context model a file's ``intra_context`` entry names (CorruptFileError when it is malformed or
    names no shipped context model on ``image_reference``'s hyperprior; ModelMismatchError when the installed
    model is not the one the file was coded with)."""
    model_id, _, digest = entry.rpartition("@") if isinstance(entry, str) else ("", "", "")
    if not model_id or len(digest) != 2 * HASH_BYTES:
        raise CorruptFileError("the file's intra_context entry is malformed")
    expected = context_entry(model_id, image_reference)
    if expected is None:
        raise CorruptFileError(f"the file's intra_context {model_id[:64]!r} is not a shipped context model on "
                               "this video model's I-frame hyperprior")
    if expected != entry:
        raise ModelMismatchError(f"the file was coded with another version of {model_id!r} (sha256 {digest}..., "
                                 f"installed {expected.rpartition('@')[2]}...)")
    model = model_from_weights(load_pretrained(model_id))
    assert isinstance(model, ImageContextModel)  # its config has a context entry (checked above)
    return model
