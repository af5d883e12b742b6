"""Fuzzing the decoders and encoders with damaged, crafted and hostile files, in bounded worker processes.

Seeds are the golden files (``tests/data/golden``: every file layout of every shipped model) and their
inputs. Each case is one of

* **decode**, of a seed .ncd file damaged at random (truncated, bits flipped: the container's checksum
  no longer matches) or *crafted*: parsed, one field changed (a size, a count, a level, a section's bytes,
  a name, the alpha plane...) and written back with valid checksums, as a hostile writer would;
* **encode**, of a hostile input: PNG headers declaring huge sizes (decompression bombs), truncated or
  corrupt images, Y4M headers with huge or broken sizes, IDX headers with huge counts, mixed folders.

Every case runs in a worker process whose address space is capped as a safety net (``RLIMIT_AS``: the
worker's size once torch and the models are loaded, plus ``--memory-mb``); the worker resets its peak-RSS
counter before each case (``/proc/self/clear_refs``) and reports the case's outcome, time and peak RSS,
from which the summary counts the cases that made the worker grow by more than 1 GiB. A case passes when
it ends in success or in a typed ``NeuralCodecError`` (running out of memory is one: a LimitExceededError),
within ``--timeout`` seconds, without the worker dying. Anything else (an untyped exception, a crash, a
timeout) is a finding.

    python tests/fuzzing.py --cases 5000 --out benchmarks/results/fuzz     # `make fuzz`
    python tests/fuzzing.py --cases 200 --seed 7                          # a quick run

``tests/test_fuzz.py`` runs a fixed slice of cases in ``make test``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 8, 63, 64, 255, 256, 4096, 65535, 65536, 65537, 2**20, 2**24, 2**31 - 1,
                    2**31, 2**32, 2**40, 2**62, -(2**63), 20000, 8192, 100000, 1000000]


@dataclass
class Case:
    """One fuzz case: decode ``path`` or encode it (with ``codec`` when given)."""

    case_id: int
    action: str
    path: str
    mutation: str
    codec: str | None = None


@dataclass
class Outcome:
    """What happened to a case."""

    case_id: int
    action: str
    mutation: str
    result: str
    """"ok", "typed" (a NeuralCodecError), "untyped" (any other exception), "crash", "timeout"."""
    error: str = ""
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    """Peak resident memory of the worker during the case (its baseline, torch and models loaded, included)."""


# ------------------------------------------------------------------------------------ case generation


def seed_files() -> list[Path]:
    """The golden .ncd files: every layout of every shipped model."""
    return sorted(GOLDEN.glob("*.ncd"))


def make_cases(count: int, seed: int, workdir: Path) -> list[Case]:
    """``count`` cases written under ``workdir`` (about 85% decode cases, 15% hostile encode inputs)."""
    rng = random.Random(seed)
    seeds = [(path, path.read_bytes()) for path in seed_files()]
    cases = []
    for case_id in range(count):
        if rng.random() < 0.15:
            path, mutation, codec = hostile_encode_input(rng, workdir, case_id)
            cases.append(Case(case_id, "encode", str(path), mutation, codec))
            continue
        name, data = rng.choice(seeds)
        damaged, mutation = mutate_file(data, rng)
        path = workdir / f"case{case_id:05d}.ncd"
        path.write_bytes(damaged)
        cases.append(Case(case_id, "decode", str(path), f"{name.stem}: {mutation}"))
    return cases


def mutate_file(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A damaged or crafted variant of the .ncd file ``data`` and a description of the change."""
    kind = rng.choices(["truncate", "flip", "crafted"], weights=[1, 2, 6])[0]
    if kind == "truncate":
        cut = rng.randrange(len(data))
        return data[:cut], f"truncated to {cut} bytes"
    if kind == "flip":
        return flip_bits(data, rng, rng.randint(1, 8)), "bits flipped"
    return crafted(data, rng)


def flip_bits(data: bytes, rng: random.Random, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        if out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def crafted(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """``data`` parsed, one field changed, written back with valid checksums (regular or compact form)."""
    from neuralcodec import container
    from neuralcodec.codecs.image import compact as image_compact
    from neuralcodec.pretrained import compact_models

    models = compact_models()
    payload = container.read(data, compact_models=models)
    code = next((c for c, m in models.items() if m.model_id == payload.model_id), None)
    was_compact = data[:2] == container.COMPACT_MAGIC
    if was_compact and rng.random() < 0.4:  # damage the compact stream itself, with its check recomputed
        stream = payload.sections[container.COMPACT_STREAM]
        payload.sections[container.COMPACT_STREAM] = _mutated_bytes(stream, rng)
        return container.write_compact(payload, code), "compact stream changed, check recomputed"
    if was_compact and payload.codec == "image-hyperprior":
        payload = image_compact.unpack(payload)
    description = _mutate_payload(payload, rng)
    if was_compact and payload.codec == "image-hyperprior" and rng.random() < 0.5:
        packed = _try(lambda: image_compact.pack(payload))
        if packed is not None:
            return container.write_compact(packed, code), description + " (compact form)"
    return container.write(payload), description


def _try(make):
    try:
        return make()
    except Exception:  # a crafted payload the packer cannot represent: write it in the regular form
        return None


def _mutate_payload(payload, rng: random.Random) -> str:
    """Change one thing in ``payload`` in place; returns what was changed."""
    meta, sections = payload.metadata, payload.sections
    choice = rng.choices(["meta-int", "meta-type", "meta-drop", "section", "alpha", "names", "ids"],
                         weights=[6, 1, 1, 5, 1, 1, 1])[0]
    int_keys = [k for k, v in meta.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    list_keys = [k for k, v in meta.items() if isinstance(v, list)]
    if choice == "meta-int" and (int_keys or list_keys):
        key = rng.choice(int_keys + list_keys)
        if key in list_keys:
            values = list(meta[key])
            if values and rng.random() < 0.7:
                values[rng.randrange(len(values))] = rng.choice(INTERESTING_INTS)
            else:
                values = values + [rng.choice(INTERESTING_INTS)] * rng.choice([1, 2, 1000])
            meta[key] = values
            return f"list {key} changed"
        value = rng.choice(INTERESTING_INTS) if rng.random() < 0.7 else rng.randint(-5, 70000)
        meta[key] = float(value) if isinstance(meta[key], float) and rng.random() < 0.5 else value
        if key in ("height", "width") and rng.random() < 0.3:  # both sides: a decompression bomb
            meta["height"] = meta["width"] = value
            return f"height = width = {value}"
        return f"{key} = {meta[key]}"
    if choice == "meta-type" and meta:
        key = rng.choice(sorted(meta))
        meta[key] = rng.choice(["text", b"\x00\x01", True, [1, 2, 3], 1.5, float("nan")])
        return f"{key} retyped as {type(meta[key]).__name__}"
    if choice == "meta-drop" and meta:
        key = rng.choice(sorted(meta))
        del meta[key]
        return f"{key} removed"
    if choice == "alpha" and "alpha" in sections:
        sections["alpha"], what = rng.choice([(_png_header_only(100000, 100000), "PNG declaring 100000x100000"),
                                              (_png_header_only(20000, 20000), "PNG declaring 20000x20000"),
                                              (_tiny_jpeg(), "a JPEG"), (b"", "empty")])
        return f"alpha section: {what}"
    if choice == "names" and "names" in sections:
        count = int(meta.get("count", 1))
        names = rng.choice([["a\x00b.png"] * count, ["x" * 300 + ".png"] * count, ["same.png"] * count,
                            [f"{i}.jpg" for i in range(count)], [f"../{i}.png" for i in range(count)],
                            [f"{i}.png" for i in range(count + 1)]])
        sections["names"] = zlib.compress("\n".join(names).encode("utf-8", "surrogatepass"))
        return f"names: {names[0][:20]!r}..."
    if choice == "ids":
        field = rng.choice(["model_id", "codec", "weights_hash"])
        value = {"model_id": rng.choice(["/etc/hostname", "../../x", "", "hclt-mnist", "hyperprior-vr9c-n96"]),
                 "codec": rng.choice(["image-hyperprior", "video-st", "video-mc", "lossless-pc", "nope", ""]),
                 "weights_hash": rng.choice([b"", b"\x00" * 8, os.urandom(8)])}[field]
        setattr(payload, field, value)
        return f"{field} = {value!r}"
    if not sections:
        return "nothing changed"
    name = rng.choice(sorted(sections))
    if rng.random() < 0.15:
        del sections[name]
        return f"section {name} removed"
    sections[name] = _mutated_bytes(sections[name], rng)
    return f"section {name} changed"


def _mutated_bytes(data: bytes, rng: random.Random) -> bytes:
    how = rng.randrange(5)
    if how == 0:
        return flip_bits(data, rng, rng.randint(1, 4))
    if how == 1:
        return data[: rng.randrange(len(data) + 1)]
    if how == 2:
        return data + bytes(rng.randrange(256) for _ in range(rng.choice([1, 16, 4096])))
    if how == 3:
        return b""
    return bytes(rng.randrange(256) for _ in range(len(data)))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int, mode: int = 0) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` (8-bit, colour type ``mode``) over one tiny IDAT:
    a decompression bomb's header, in a few dozen bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (61, 45), 128).save(buffer, format="JPEG")
    return buffer.getvalue()


def hostile_encode_input(rng: random.Random, workdir: Path, case_id: int) -> tuple[Path, str, str | None]:
    """A hostile input file (or folder) for ``codec encode``, the description, and the codec to force."""
    base = workdir / f"case{case_id:05d}"
    kind = rng.randrange(8)
    if kind == 0:
        side = rng.choice([8200, 20000, 100000, 65535])
        path = base.with_suffix(".png")
        path.write_bytes(_png_header_only(side, side, rng.choice([0, 2, 6])))
        return path, f"PNG declaring {side}x{side}", None
    if kind == 1:
        path = base.with_suffix(".png")
        data = (GOLDEN / "rgb-103x71.png").read_bytes()
        path.write_bytes(flip_bits(data, rng, 4) if rng.random() < 0.5 else data[: rng.randrange(len(data))])
        return path, "damaged PNG", None
    if kind == 2:
        width, height = rng.choice([(20000, 20000), (0, 10), (-5, 10), (65537, 2), (64, 48)])
        path = base.with_suffix(".y4m")
        frames = b"FRAME\n" + bytes(rng.randrange(64)) if rng.random() < 0.5 else b""
        path.write_bytes(f"YUV4MPEG2 W{width} H{height} F25:1 C420jpeg\n".encode() + frames)
        return path, f"Y4M {width}x{height}, broken frames", None
    if kind == 3:
        path = base.with_suffix(".y4m")
        data = (GOLDEN / "clip-64x48.y4m").read_bytes()
        path.write_bytes(data[: rng.randrange(len(data))] if rng.random() < 0.5 else flip_bits(data, rng, 16))
        return path, "damaged Y4M", None
    if kind == 4:
        path = workdir / f"case{case_id:05d}-images-idx3-ubyte"
        count, rows, cols = rng.choice([(2**31, 28, 28), (10**6, 28, 28), (3, 28, 28), (1, 20000, 20000), (0, 28, 28)])
        body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 100, 2352])))
        path.write_bytes(struct.pack(">HBBIII", 0, 8, 3, count, rows, cols) + body)
        return path, f"IDX declaring {count}x{rows}x{cols}", None
    if kind == 5:
        folder = base
        folder.mkdir()
        shutil.copy(GOLDEN / "digit-28x28.png", folder / "a.png")
        shutil.copy(GOLDEN / rng.choice(["garment-28x28.png", "gray-77x53.png", "rgb-103x71.png"]), folder / "b.png")
        return folder, "folder of mixed images", rng.choice([None, "lossless-pc", "video-st", "video-mc"])
    if kind == 6:
        path = base.with_suffix(rng.choice([".png", ".jpg", ".webp", ".y4m", ".mp4"]))
        path.write_bytes(rng.choice([b"", b"\x00" * 100, os.urandom(rng.randrange(1, 2000))]))
        return path, f"junk {path.suffix}", None
    path = base.with_suffix(".png")
    path.write_bytes(_png_header_only(rng.choice([1, 28, 4096]), rng.choice([1, 28, 4096]), rng.choice([0, 4, 6])))
    return path, "PNG with a too-short IDAT", rng.choice([None, "lossless-pc"])


# ------------------------------------------------------------------------------------------- workers


def worker_main() -> None:
    """Run cases read as JSON lines from stdin; write one JSON outcome per line to stdout (after ``_warm_up``
    and ``_limit_address_space``)."""
    from neuralcodec import api
    from neuralcodec.errors import NeuralCodecError

    print(json.dumps({"ready": True, "vm_mb": _status_mb("VmSize"), "rss_mb": _status_mb("VmRSS")}), flush=True)
    for line in sys.stdin:
        case = Case(**json.loads(line))
        out_dir = Path(tempfile.mkdtemp(prefix="fuzz-out-"))
        _reset_peak_rss()
        started = time.perf_counter()
        result, error = "ok", ""
        try:
            if case.action == "decode":
                api.decode_path(Path(case.path), out_dir / "decoded")
            else:
                api.encode_path(Path(case.path), out_dir / "encoded.ncd", codec=case.codec)
        except NeuralCodecError as exc:
            result, error = "typed", f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # noqa: BLE001 - the finding this harness looks for
            result, error = "untyped", "".join(traceback.format_exception_only(type(exc), exc)).strip()[:300]
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        outcome = Outcome(case.case_id, case.action, case.mutation, result, error,
                          round(time.perf_counter() - started, 4), _status_mb("VmHWM"))
        print(json.dumps(asdict(outcome)), flush=True)


def _warm_up() -> None:
    """Decode every seed file once, with every codec kept built, so that a case's memory and time are the
    case's own: not torch's first use of a kernel, nor a model built again because another was used since."""
    from neuralcodec import api

    api._KEPT_CODECS = 64
    cases = json.loads((GOLDEN / "manifest.json").read_text())["cases"]
    with tempfile.TemporaryDirectory(prefix="fuzz-warm-") as folder:
        for case in cases:  # (an image is decoded to a PNG; video frames and image sets to a folder)
            suffix = ".png" if case["decoded"] == "image" else ""
            api.decode_path(GOLDEN / case["ncd"], Path(folder) / (case["name"] + suffix))


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _status_mb(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


class WorkerPool:
    """One worker process at a time, restarted after a crash, a timeout or a memory failure."""

    def __init__(self, memory_mb: int, timeout: float) -> None:
        self.memory_mb = memory_mb
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.cap_mb = 0.0
        self.baseline_rss_mb = 0.0
        """Resident memory of the warmed-up worker (torch and every shipped codec model loaded)."""

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
        self.process = subprocess.Popen([sys.executable, __file__, "--worker", "--memory-mb", str(self.memory_mb)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=env)
        ready = json.loads(self.process.stdout.readline())
        self.cap_mb = ready["vm_mb"] + self.memory_mb
        self.baseline_rss_mb = max(self.baseline_rss_mb, ready["rss_mb"])

    def run(self, case: Case) -> Outcome:
        if self.process is None or self.process.poll() is not None:
            self._start()
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(asdict(case)) + "\n")
        self.process.stdin.flush()
        line = _readline(self.process, self.timeout)
        if line is None:
            timed_out = self.process.poll() is None
            self.close()
            return Outcome(case.case_id, case.action, case.mutation, "timeout" if timed_out else "crash",
                           f"no answer within {self.timeout} s" if timed_out else "the worker died")
        return Outcome(**json.loads(line))

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _readline(process: subprocess.Popen, timeout: float) -> str | None:
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        return None
    line = process.stdout.readline()
    return line or None


def _limit_address_space(extra_mb: int) -> None:
    """Cap this process's address space at its size after warm-up plus ``extra_mb`` (set after warm-up)."""
    current = _status_mb("VmSize")
    limit = int((current + extra_mb) * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# -------------------------------------------------------------------------------------------- driver


def run_cases(cases: list[Case], memory_mb: int, timeout: float, progress: bool = False) -> tuple[list[Outcome], float]:
    """Run ``cases`` in a capped worker; the outcomes in case order and the worker's baseline RSS (MiB)."""
    pool = WorkerPool(memory_mb, timeout)
    outcomes = []
    try:
        for index, case in enumerate(cases):
            outcomes.append(pool.run(case))
            if progress and (index + 1) % 100 == 0:
                bad = sum(o.result not in ("ok", "typed") for o in outcomes)
                print(f"{index + 1}/{len(cases)} cases, {bad} findings", file=sys.stderr, flush=True)
    finally:
        pool.close()
    return outcomes, pool.baseline_rss_mb


def summarize(outcomes: list[Outcome], memory_mb: int, timeout: float, baseline_rss_mb: float) -> dict:
    """Counts by action and result, the slowest and largest cases, and every finding."""
    summary: dict = {"cases": len(outcomes), "address_space_cap_mb_over_warm_worker": memory_mb, "timeout_s": timeout,
                     "warm_worker_rss_mb": baseline_rss_mb, "by_result": {}, "findings": []}
    for outcome in outcomes:
        key = f"{outcome.action}/{outcome.result}"
        summary["by_result"][key] = summary["by_result"].get(key, 0) + 1
        if outcome.result not in ("ok", "typed"):
            summary["findings"].append(asdict(outcome))
    measured = [o for o in outcomes if o.result in ("ok", "typed")]
    if measured:
        summary["max_seconds"] = max(o.seconds for o in measured)
        summary["max_peak_rss_mb"] = max(o.peak_rss_mb for o in measured)
        summary["max_rss_over_warm_worker_mb"] = round(summary["max_peak_rss_mb"] - baseline_rss_mb, 1)
        summary["cases_over_1gb_above_warm_worker"] = sum(o.peak_rss_mb - baseline_rss_mb > 1024 for o in measured)
        summary["out_of_memory"] = sum("out of memory" in o.error for o in measured)
        summary["slowest"] = asdict(max(measured, key=lambda o: o.seconds))
        summary["largest"] = asdict(max(measured, key=lambda o: o.peak_rss_mb))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000, help="number of cases")
    parser.add_argument("--seed", type=int, default=0, help="random seed (cases are reproducible from it)")
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="address space a case may add to the warmed-up worker's, in MiB (a safety cap; the "
                             "summary counts cases whose resident memory grew by more than 1 GiB)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take")
    parser.add_argument("--out", type=Path, default=None, help="folder for summary.json and outcomes.jsonl")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _warm_up()
        _limit_address_space(args.memory_mb)
        worker_main()
        return 0
    with tempfile.TemporaryDirectory(prefix="fuzz-cases-") as workdir:
        cases = make_cases(args.cases, args.seed, Path(workdir))
        started = time.perf_counter()
        outcomes, baseline_rss_mb = run_cases(cases, args.memory_mb, args.timeout, progress=True)
    summary = summarize(outcomes, args.memory_mb, args.timeout, baseline_rss_mb)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    summary["seed"] = args.seed
    print(json.dumps({k: v for k, v in summary.items() if k != "findings"}, indent=2))
    for finding in summary["findings"]:
        print(json.dumps(finding), file=sys.stderr)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        with open(args.out / "outcomes.jsonl", "w") as handle:
            for outcome in outcomes:
                handle.write(json.dumps(asdict(outcome)) + "\n")
    return 1 if summary["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
