# FOCA: `make toy` and `make test` set themselves up on a fresh clone. `make help` lists targets.
#
# PY picks the interpreter. By default it is .venv/bin/python and targets create the venv first.
# On a machine whose Python already has the packages (a GPU box): `make TARGET PY=python3`
# runs with that Python and creates no venv.
SHELL := /bin/bash
VENV ?= .venv
PY ?= $(VENV)/bin/python
# This machine has these releases on disk; elsewhere override, e.g. TORCH_PINS="torch torchvision".
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
PIP_FLAGS ?= -q --disable-pip-version-check
# Where the shared real data lives (CIFAR-10 parts, Tiny ImageNet subset); see ../shared/data/README.md.
export FOCA_DATA ?= $(abspath ../shared/data)

ifeq ($(PY),$(VENV)/bin/python)
LIGHT := $(VENV)/.stamp-light
FULL := $(VENV)/.stamp-full
endif

.PHONY: help setup setup-light toy test test-slow bench bench-mini bench-data crosscheck crosscheck-authors bench-authors mutate digits-claims cifar10-budget cifar10-cpu cifar10-cpu-sweep cifar10-cpu-scaling clean

help:
	@echo "make TARGET [PY=python3] [ARGS=\"--key=value ...\"]; the targets, grouped as the folders they drive:"
	@echo ""
	@echo "Set-up and the three layers (minifoca/, toy/, scaled/; tests/)"
	@echo "  make setup           create .venv and install everything, torch included (idempotent)"
	@echo "  make setup-light     .venv with the light dependencies only (minifoca, toy)"
	@echo "  make toy             teaching demos -> figures/ (light deps only, ~1-2 min on 2 CPU cores)"
	@echo "  make test            the fast test suite (sets up .venv with torch first; ~10 min on 2 cores)"
	@echo "  make test-slow       checks marked slow (multi-seed claims, longer runs)"
	@echo "  make clean           remove .cache, runs, figures and report"
	@echo ""
	@echo "Reproducing the paper (scaled/reproduce.py, mk/reproduce.mk; a CUDA GPU; SEEDS=3 by default)"
	@echo "  make cifar10         Table 2 CIFAR-10 (WRN-28-10 + cutout): FOCA, E2E, E2E at 600 epochs"
	@echo "  make cifar100        Table 2 CIFAR-100 (CIFAR-100 via ARGS=--data-dir or ARGS=--download=true)"
	@echo "  make tinyimagenet    Table 2 Tiny ImageNet"
	@echo "  make pyramidnet      Table 3: PyramidNet-272 + ShakeDrop + RE, FOCA and E2E, CIFAR-10 and -100"
	@echo "  make table1          Table 1: the head ablation A-D, WRN-28-10 FOCA on CIFAR-10"
	@echo "  make finetune        Fig. 1: 30 epochs of E2E fine-tuning from the finished FOCA runs (--init_from)"
	@echo "  make report          report/README.md: ours beside the paper, what is missing, figures (any machine)"
	@echo ""
	@echo "Studies behind the README's measured tables (scripts/studies/)"
	@echo "  make digits-claims   FOCA vs E2E on digits over 5 seeds with minifoca (~2 min on 2 CPU cores)"
	@echo "  make cifar10-budget  FOCA vs E2E on real CIFAR-10 in MINUTES (default 10) on your GPU"
	@echo "  make cifar10-cpu     the same on the CPU in MINUTES (default 60): verdicts, table, figures -> results/cpu-<date>/"
	@echo "  make cifar10-cpu-sweep  how the CPU study's network and learning rates were chosen, on val (~10 min)"
	@echo "  make cifar10-cpu-scaling  FOCA vs E2E as training grows (5-40 epochs; 10k subset to 160), MINUTES (default 120) at a time;"
	@echo "                       a rerun continues: commit results/cpu-scaling/records and trunks"
	@echo ""
	@echo "The parity harness (scripts/crosscheck/)"
	@echo "  make crosscheck      toy, minifoca, scaled and the authors' code compute the same numbers (~15 s)"
	@echo "  make crosscheck-authors  only scaled vs the authors' code (FOCA_V1_DIR), their get_dataset too (~40 s)"
	@echo ""
	@echo "Benchmarks, not tests (scripts/bench/)"
	@echo "  make bench           bench-mini and bench-data (~1 min)"
	@echo "  make bench-mini      minifoca (NumPy) vs the same computation in torch on the CPU"
	@echo "  make bench-data      batched device augmentation vs a torchvision DataLoader, images/s"
	@echo "  make bench-authors   the authors' per-image loop vs our batched engine, CPU images/s"
	@echo ""
	@echo "The GPU plan (scripts/gpu/README.md): bash scripts/gpu/check.sh, then bash scripts/gpu/budget.sh"
	@echo ""
	@echo "Development tools (scripts/dev/)"
	@echo "  make mutate          break one line at a time (74 mutations); the tests must catch each (~5 min)"

setup-light: $(LIGHT)
setup: $(FULL)

$(VENV)/.stamp-light: pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[test]'
	touch $@

# torch is installed in the same pip call as the package so pip never resolves an unpinned torch.
$(VENV)/.stamp-full: $(VENV)/.stamp-light
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[test,torch]' $(TORCH_PINS)
	bash scripts/dev/install_system_data.sh
	touch $@

toy: $(LIGHT)
	$(PY) -m toy.run $(ARGS)

# Two pytest workers on 2 cores: most tests wait on subprocesses. -n 0 if xdist is missing (GPU box).
XDIST = $(shell $(PY) -c "import xdist" 2>/dev/null && echo "-n 2 --dist loadfile")
test: $(FULL)
	$(PY) -m pytest -q -m "not slow" $(XDIST) $(ARGS)

test-slow: $(FULL)
	$(PY) -m pytest -q -m slow $(ARGS)

bench: bench-mini bench-data

bench-mini: $(FULL)
	$(PY) -m scripts.bench.mini $(ARGS)

bench-data: $(FULL)
	$(PY) -m scripts.bench.data $(ARGS)

crosscheck: $(FULL)
	$(PY) -m scripts.crosscheck $(ARGS)

# The authors' code: FOCA_V1_DIR, default ../shared/ref/FOCA-v1 (a clone of DensoITLab/FOCA-v1).
crosscheck-authors: $(FULL)
	$(PY) -m scripts.crosscheck --authors --full $(ARGS)

bench-authors: $(FULL)
	$(PY) -m scripts.bench.authors $(ARGS)

mutate: $(FULL)
	$(PY) -m scripts.dev.mutate $(ARGS)

digits-claims: $(LIGHT)
	$(PY) -m scripts.studies.digits_claims $(ARGS)

# FOCA vs E2E on real CIFAR-10 in MINUTES of one GPU: epochs sized from a probe on the card, run
# folders + budget.json + budget_features.png under runs/budget/<date-time>/. ARGS: --data-dir DIR,
# --download=true, --seeds N, --out DIR. Without a GPU: one line, within seconds.
MINUTES ?= 10
cifar10-budget: $(FULL)
	$(PY) -m scripts.studies.budget --minutes $(MINUTES) $(ARGS)

# The laptop study: FOCA vs E2E (and head C, and fine-tuning) on real CIFAR-10 on the CPU in MINUTES
# (default 60), the same code as cifar10-budget (scripts/studies/budget.py --cpu): study.json, table.md and
# figures in results/cpu-<date>/, run folders in runs/cpu-study/. A rerun with the same date skips
# finished runs and resumes killed ones. cifar10-cpu-sweep: how its network and rates were chosen.
CPU_MINUTES = $(if $(filter command line environment,$(origin MINUTES)),$(MINUTES),60)
cifar10-cpu: $(FULL)
	$(PY) -m scripts.studies.budget --cpu --minutes $(CPU_MINUTES) $(ARGS)

cifar10-cpu-sweep: $(FULL)
	$(PY) -m scripts.studies.cpu_sweep $(ARGS)

# Does E2E always win? FOCA vs E2E at 5, 10, 20, 40 epochs (a 10k subset to 160) on the CPU (scripts/studies/scaling.py), in
# sessions of MINUTES (default 120): each run's record and trunk checkpoint go to results/cpu-scaling/.
SCALING_MINUTES = $(if $(filter command line environment,$(origin MINUTES)),$(MINUTES),120)
cifar10-cpu-scaling: $(FULL)
	$(PY) -m scripts.studies.scaling --minutes $(SCALING_MINUTES) $(ARGS)

include mk/reproduce.mk

clean:
	rm -rf .cache runs figures report .pytest_cache
