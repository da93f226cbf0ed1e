# Reproduction targets: one command per paper result (scaled/reproduce.py), and the report.
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

.PHONY: $(REPRO_GROUPS) report help-reproduce

$(REPRO_GROUPS): $(FULL)
	$(PY) -m scaled.reproduce $@ --seeds $(SEEDS) $(ARGS)

# mkdir: on a fresh clone the report lists every target as not run yet.
report: $(FULL)
	mkdir -p runs/scaled
	$(PY) -m scaled.report runs/scaled --out report --seeds $(SEEDS) $(REPORT_ARGS)

help-reproduce:
	@echo "make cifar10       Table 2 CIFAR-10 (WRN-28-10 + cutout): FOCA, E2E, E2E at 600 epochs x SEEDS (GPU)"
	@echo "make cifar100      Table 2 CIFAR-100 (GPU; CIFAR-100 via --data-dir or ARGS=--download=true)"
	@echo "make tinyimagenet  Table 2 Tiny ImageNet (GPU)"
	@echo "make pyramidnet    Table 3: PyramidNet-272 + ShakeDrop + RE, FOCA and E2E, CIFAR-10 and -100 (GPU)"
	@echo "make table1        Table 1: the head ablation A-D, WRN-28-10 FOCA on CIFAR-10 (GPU)"
	@echo "make finetune      Fig. 1: FOCA then 30 epochs of E2E fine-tuning, CIFAR-100 and CIFAR-10 (GPU)"
	@echo "make report        report/README.md: ours beside the paper, what is missing, figures (any machine)"
	@echo "SEEDS=3 by default; ARGS passes options, e.g. ARGS=\"--data-dir /data --only wrn28-c10-foca\""
