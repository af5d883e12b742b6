"""Quality of the perception models on uncompressed test data: the numbers shipped in models.json.

- classifiers: top-1 accuracy on the full MNIST / Fashion-MNIST test sets (10,000 images each);
- face embedders: on the 12 held-out ORL subjects (never trained on), leave-one-out rank-1
  identification and the true-accept rate at the threshold giving a 1% false-accept rate.

    python benchmarks/perception_models.py --out benchmarks/results/perception
    [--classifier-mnist PATH] [--classifier-fashion-mnist PATH] [--face-embedder-orl PATH]
    [--face-embedder-orl-residual PATH]  (default: the shipped ids)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from neuralcodec.eval.tasks import perception_task

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CLASSIFIERS = {"classifier-mnist": "mnist", "classifier-fashion-mnist": "fashion-mnist"}
FACE_EMBEDDERS = ("face-embedder-orl", "face-embedder-orl-residual")


def uncompressed_summary(task_name: str, model: str, data: Path) -> dict:
    task = perception_task(task_name, model=model)
    samples = task.samples(data)
    return task.summarize([task.score(s, s.signal) for s in samples])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    for model_id in (*CLASSIFIERS, *FACE_EMBEDDERS):
        parser.add_argument(f"--{model_id}", default=None, help=f"weights path (default: shipped {model_id})")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {}
    for model_id, dataset in CLASSIFIERS.items():
        model = getattr(args, model_id.replace("-", "_")) or model_id
        results[model_id] = uncompressed_summary("classify", model, SHARED / dataset / "t10k-images-idx3-ubyte.gz")
    for model_id in FACE_EMBEDDERS:
        model = getattr(args, model_id.replace("-", "_")) or model_id
        results[model_id] = uncompressed_summary("face-id", model, SHARED / "faces" / "orl")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "perception_models.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
