"""Typed, user-facing errors. Every message says what is wrong in one line."""

from __future__ import annotations


class NeuralCodecError(Exception):
    """Base class of every error neuralcodec raises on purpose (bad input, bad file, bad model)."""


class InputError(NeuralCodecError):
    """An input file or tensor cannot be used (not an image, empty, wrong shape, wrong dtype...)."""


class ContainerError(NeuralCodecError):
    """Base class of problems with an .ncd file."""


class NotNcdFileError(ContainerError):
    """The file does not start with the .ncd magic bytes."""


class TruncatedFileError(ContainerError):
    """The file ends before the structure it announces."""


class CorruptFileError(ContainerError):
    """Checksum mismatch or an inconsistent structure inside the file."""


class UnsupportedVersionError(ContainerError):
    """The file was written by a format version this library cannot read."""


class UnknownModelError(NeuralCodecError):
    """No registered codec or pretrained model has the requested name."""


class ModelMismatchError(NeuralCodecError):
    """The file was encoded with different weights than the ones available for decoding."""


class LimitExceededError(NeuralCodecError):
    """A dimension or size exceeds a configured safety limit."""


class EntropyCodingError(NeuralCodecError):
    """The entropy coder was given symbols or parameters it cannot code, or the bitstream is inconsistent."""
