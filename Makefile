# The README's two commands: `make demo` and `make test`. Each creates .venv when missing.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BASE_STAMP := $(VENV)/.installed-base

.PHONY: demo test bench fuzz wheel clean

# the MPQ face study: every image codec, with the low end of each sweep pushed towards 0.1 bpp
FACE_CODECS := jpeg,webp,avif,jpeg2000,jpegxl,hevc,av1,hyperprior
FACE_QUALITIES := --qualities hevc=51,48,45,42,38,34,30,26 --qualities av1=63,60,57,52,46,40,34,28 \
	--qualities jpegxl=15,12,10,8,6,4,3,2,1.5,1 --qualities jpeg2000=0.02,0.04,0.06,0.1,0.15,0.25,0.35,0.5,0.7,1,1.4

# the demo needs only the base install; the tests need the test and eval extras too
$(BASE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e .
	touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(PY) -m pip install -e '.[test,eval]'
	touch $(STAMP)

demo: $(BASE_STAMP)
	$(PY) -m neuralcodec.demo

test: $(STAMP)
	$(PY) -m pytest

# 5,000 damaged, crafted and hostile files through the decoders and encoders (see tests/fuzzing.py)
fuzz: $(STAMP)
	$(PY) tests/fuzzing.py --cases 5000 --out benchmarks/results/fuzz

bench: $(STAMP)
	$(PY) -m pip install -e '.[test,eval,bench]'
	$(PY) benchmarks/entropy_throughput.py --json benchmarks/results/entropy_throughput.json
	$(PY) benchmarks/image_speed.py --json benchmarks/results/image_speed.json
	$(PY) benchmarks/train_speed.py --json benchmarks/results/train_speed.json
	$(PY) benchmarks/kodak_rd.py --out benchmarks/results/kodak
	$(PY) benchmarks/lossless_rate.py --dataset mnist --out benchmarks/results/lossless
	$(PY) benchmarks/lossless_rate.py --dataset fashion-mnist --out benchmarks/results/lossless
	$(PY) benchmarks/lossless_speed.py --out benchmarks/results/lossless
	$(PY) benchmarks/perception_models.py --out benchmarks/results/perception
	$(PY) -m neuralcodec.cli eval --task face-id --data ../shared/data/faces/orl --out benchmarks/results/mpq-faces \
		--codecs $(FACE_CODECS) $(FACE_QUALITIES)
	$(PY) -m neuralcodec.cli eval --task speech-wer --codecs opus,mp3 --data ../shared/data/speech \
		--out benchmarks/results/mpq-speech --qualities opus=6,8,12,16,24,32 --qualities mp3=8,16,24,32,48
	$(PY) benchmarks/face_codec_study.py --ipr faces-ipr --mse faces-mse --out benchmarks/results/faces-ipr
	$(PY) benchmarks/video_rd.py --out benchmarks/results/video
	$(PY) benchmarks/video_speed.py --out benchmarks/results/video
	$(PY) -m neuralcodec.cli eval --task classify --task-model classifier-mnist --limit 500 \
		--data ../shared/data/mnist/t10k-images-idx3-ubyte.gz --out benchmarks/results/mpq-mnist \
		--codecs jpeg,webp,avif,jpeg2000,hyperprior --qualities jpeg2000=0.15,0.25,0.35,0.5,0.7,1,1.4,2

# a stale build/ would put files removed since (retired weights) back into the wheel
wheel:
	rm -rf build
	$(PYTHON) -m pip wheel . --no-deps -w dist

clean:
	rm -rf $(VENV) build dist *.egg-info demo-output
