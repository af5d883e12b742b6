"""Machine-perception tasks for ``codec eval --task``: each scores decoded samples with a downstream model."""

from __future__ import annotations

from neuralcodec.errors import InputError
from neuralcodec.eval.tasks.base import Modality, PerceptionTask, Sample

TASK_NAMES = ("classify", "face-id", "speech-wer")

__all__ = ["TASK_NAMES", "Modality", "PerceptionTask", "Sample", "perception_task"]


def perception_task(name: str, model: str | None = None, arch: str | None = None,
                    weights: str | None = None, labels: str | None = None) -> PerceptionTask:
    """The task called ``name``.

    - ``classify``: the shipped grey classifier ``model`` (default ``classifier-mnist``; also
      ``classifier-fashion-mnist`` or a classifier .safetensors) scored against the IDX ``labels``
      (default: the labels file beside the images), or with ``arch`` any torchvision architecture loaded
      from the state dict ``weights`` (scored against its own prediction on the originals: no labels);
    - ``face-id``: identification/verification with the face embedder ``model`` (default ``face-embedder-orl``);
    - ``speech-wer``: PocketSphinx word error rate.
    """
    if name == "classify":
        from neuralcodec.eval.tasks.classification import ShippedClassifierTask, TorchvisionClassifierTask

        if arch is not None:
            if weights is None:
                raise InputError("--arch needs --weights: a state-dict file for that torchvision architecture")
            if labels is not None:
                raise InputError("--labels is for the shipped classifiers; --arch is scored against its own "
                                 "predictions on the originals")
            return TorchvisionClassifierTask(arch, weights)
        if weights is not None:
            raise InputError("--weights is for a torchvision --arch; pass a shipped classifier with --task-model")
        return ShippedClassifierTask(model or "classifier-mnist", labels)
    if arch is not None or weights is not None or labels is not None:
        raise InputError("--arch, --weights and --labels only apply to the classify task")
    if name == "face-id":
        from neuralcodec.eval.tasks.faces import FaceIdentificationTask

        return FaceIdentificationTask(model or "face-embedder-orl")
    if name == "speech-wer":
        if model is not None:
            raise InputError("speech-wer uses PocketSphinx's bundled English model; --task-model does not apply")
        from neuralcodec.eval.tasks.speech import SpeechRecognitionTask

        return SpeechRecognitionTask()
    raise InputError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}")
