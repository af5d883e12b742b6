"""Encode options of the image family (what `codec encode` and ``neuralcodec.encode_file`` accept for it)."""

from __future__ import annotations

from dataclasses import dataclass

from neuralcodec.codecs.base import EncodeOptions, cli_option, quality_option


@dataclass
class ImageOptions(EncodeOptions):
    """Options of the image codec."""

    quality: float | None = quality_option()
    refine_steps: int = cli_option(
        0, "--refine", type=int, metavar="STEPS",
        help="image models: optimize the latents for this image with STEPS gradient steps (about 1 s each for a "
             "768x512 image on 2 CPU cores; 20 saved 8%% of the rate at equal PSNR on Kodak, see the README); kept "
             "only when that lowers the rate-distortion cost; decoding is unchanged (default 0: off)")
