# Reproduction targets: one command per paper result (scaled/reproduce.py), and the report.
# `make help` lists them with the other targets.
# Included by the main Makefile, which defines PY (the Python), FULL (a prerequisite that sets up
# the venv; empty with PY=python3) and exports FOCA_DATA (the data folder).
#
#   make cifar10                      Table 2 CIFAR-10: FOCA, E2E (cutout recipe), E2E at 600 epochs, x SEEDS
#   make cifar10 SEEDS=5 ARGS="--data-dir /data --download=true"
#   make report                       tables and figures from runs/scaled -> report/README.md
#                                     (REPORT_ARGS="--groups cifar10,table1" for a part)
#
# Each target needs a CUDA GPU and its data, and says so within seconds when either is missing.
# Rerunning a target skips finished runs and resumes interrupted ones.
SEEDS ?= 3
REPRO_GROUPS := cifar10 cifar100 tinyimagenet pyramidnet table1 finetune

.PHONY: $(REPRO_GROUPS) report

$(REPRO_GROUPS): $(FULL)
	$(PY) -m scaled.reproduce $@ --seeds $(SEEDS) $(ARGS)

# mkdir: on a fresh clone the report lists every target as not run yet.
report: $(FULL)
	mkdir -p runs/scaled
	$(PY) -m scaled.report runs/scaled --out report --seeds $(SEEDS) $(REPORT_ARGS)
