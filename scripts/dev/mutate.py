"""Mutation check (not part of `make test`): break one line at a time (a backward, the optimiser,
a stage, a preset, the evaluation path, the data pipeline, the authors'-mode switches) and confirm
the test suite catches each break.

    make mutate          # or: python -m scripts.dev.mutate [--only NAME] [--tests "tests/test_layers.py ..."]

Each mutation is applied to a throw-away copy of the working tree (the checkout is never touched),
then the fast gradient/optimiser/cross-check tests run there. A mutation the suite does not catch
("survived") makes the script exit non-zero. The list lives here so docs/testing.md can quote it.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TESTS = ("tests/test_layers.py tests/test_optim.py tests/test_foca.py tests/test_convert.py "
                 "tests/test_crosscheck.py")

# (name, file, exact original text, broken text)
MUTATIONS = [
    ("linear dW scaled", "minifoca/layers.py", "dW = dout.T @ x", "dW = dout.T @ (x * 0.5)"),
    ("linear db scaled", "minifoca/layers.py", "db = dout.sum(axis=0) if has_b",
     "db = dout.sum(axis=0) * 1.01 if has_b"),
    ("relu passes negative gradient", "minifoca/layers.py", "return dout * (x > 0)", "return dout * (x >= -0.1)"),
    ("BN backward drops the mean path", "minifoca/layers.py",
     "dx = inv_std * (dxhat - dxhat.mean(axis=0) - ", "dx = inv_std * (dxhat - "),
    ("BN backward drops the variance path", "minifoca/layers.py",
     "- xhat * (dxhat * xhat).mean(axis=0))", ")"),
    ("BN running var biased", "minifoca/layers.py", "var * (n / (n - 1))", "var"),
    ("softmax CE gradient not averaged", "minifoca/layers.py", "return dlogits * (dloss / n)",
     "return dlogits * dloss"),
    ("SGD without Nesterov look-ahead", "minifoca/optim.py", "g = g + mu * buf if self.nesterov else buf",
     "g = buf"),
    ("SGD weight decay dropped", "minifoca/optim.py", "g = g + wd * p", "g = g"),
    ("SGD momentum buffer not reset on first step", "minifoca/optim.py",
     "buf = g if name not in self.buf else", "buf = 0.5 * g if name not in self.buf else"),
    ("foca_step lets theta move", "minifoca/foca.py", "opt_phi.step(dphi)\n    return loss, dphi\n",
     "opt_phi.step(dphi)\n    theta['b'] -= 0.1\n    return loss, dphi\n"),
    ("ComputeClassifier without weight decay", "minifoca/foca.py",
     "opt = SGD(theta, cfg.weak_lr, cfg.weak_momentum, cfg.weak_wd, nesterov=True)",
     "opt = SGD(theta, cfg.weak_lr, cfg.weak_momentum, 0.0, nesterov=True)"),
    ("MLP backward drops the bias gradient (no-BN layers)", "minifoca/models.py", 'grads[f"b{i}"] = db',
     'grads[f"b{i}"] = 0 * db'),
    ("MLP backward skips the ReLU", "minifoca/models.py", "dh = relu_backward(dh, c_relu)  # (N, H)",
     "dh = dh  # (N, H)"),
    # scaled: only the cross-checks hold these to minifoca
    ("scaled ComputeClassifier without Nesterov look-ahead", "scaled/foca.py",
     "W, b = W - lr * (gW + mu * buf_W), b - lr * (gb + mu * buf_b)", "W, b = W - lr * buf_W, b - lr * buf_b"),
    ("scaled ComputeClassifier without weight decay", "scaled/foca.py",
     "gW, gb = dlogits.T @ f + wd * W, dlogits.sum(0) + wd * b", "gW, gb = dlogits.T @ f, dlogits.sum(0)"),
    ("scaled ComputeClassifier softmax gradient not averaged", "scaled/foca.py",
     "dlogits = (torch.softmax(f @ W.T + b, dim=1) - onehot) / n", "dlogits = torch.softmax(f @ W.T + b, dim=1) - onehot"),
    ("scaled train_foca refreshes every step (R ignored)", "scaled/foca.py",
     "return self.theta is None or self.calls % self.refresh == 0", "return True"),
    ("scaled stage 2 with BN in train mode", "scaled/foca.py", "net.train(cfg.stage2_bn_train)", "net.train(True)"),
    ("scaled stage 3 at the stage-1 learning rate", "scaled/foca.py",
     "else (cfg.finetune_epochs, cfg.finetune_lr, cfg.finetune_schedule))",
     "else (cfg.finetune_epochs, cfg.lr, cfg.finetune_schedule))"),
    ("engine: stage-2 optimiser with phi's weight decay", "scaled/engine.py",
     "params, lr, wd = net.classifier.parameters(), cfg.stage2_lr, cfg.weak_wd",
     "params, lr, wd = net.classifier.parameters(), cfg.stage2_lr, cfg.wd"),
    ("ShakeDrop backward ignores its scale", "scaled/models/shakedrop.py",
     "return dout * bwd_scale.view(-1, *([1] * (dout.dim() - 1))), None, None", "return dout, None, None"),
    ("convert swaps BN running mean and variance", "scaled/convert.py",
     'f"mean{i}": f"{bn}.running_mean", f"var{i}": f"{bn}.running_var"',
     'f"mean{i}": f"{bn}.running_var", f"var{i}": f"{bn}.running_mean"'),
    # found by the independent review (survived before tests/test_crosscheck.py compared minifoca's
    # own train_* functions with the replayed loop, and before the engine's stage-2/3 resume tests)
    ("minifoca weak-batch features in eval mode", "minifoca/foca.py",
     "f_c = compute_features(model, x[idx_c], train=True)", "f_c = compute_features(model, x[idx_c], train=False)"),
    ("minifoca stage 2 BN mode inverted", "minifoca/foca.py",
     "f_all = None if cfg.stage2_bn_train else features(model, x)",
     "f_all = features(model, x) if cfg.stage2_bn_train else None"),
    ("minifoca fine_tune at the stage-1 lr", "minifoca/foca.py", "steps=steps, lr=cfg.finetune_lr,",
     "steps=steps, lr=cfg.lr,"),
    ("minifoca E2E classifier weight decay doubled", "minifoca/foca.py",
     "opt_theta = SGD(theta, lr, cfg.momentum, cfg.wd, nesterov=True)",
     "opt_theta = SGD(theta, lr, cfg.momentum, 2 * cfg.wd, nesterov=True)"),
    ("engine weak batch without replacement", "scaled/engine.py",
     'return torch.randint(len(self.data.y_train), (n_c,), generator=self.gens["data"])',
     'return torch.randperm(len(self.data.y_train), generator=self.gens["data"])[:n_c]',
     "tests/test_scaled_engine.py::test_weak_batch_is_sampled_with_replacement_and_augmented"),
    ("engine weak batch not augmented", "scaled/engine.py",
     "return self._augmented(idx, n_c), self.data.y_train[idx]",
     "return self._prepare(self.data.x_train[idx] / 255.0), self.data.y_train[idx]",
     "tests/test_scaled_engine.py::test_weak_batch_is_sampled_with_replacement_and_augmented"),
    ("engine resume drops a later stage's optimiser state", "scaled/engine.py",
     "            self._opt_state = None  # kept until its own stage asks",
     "        self._opt_state = None  # kept until its own stage asks",
     "tests/test_scaled_engine.py::test_resume_inside_stages_2_and_3_is_exact"),
    # authors' mode: the cross-check against the authors' own code (scripts/crosscheck/authors*.py)
    ("authors' crop range back to 0..2P", "scaled/augment.py",
     'offsets = max(1, 2 * cfg.pad + (cfg.crop_offsets == "0..2P"))', 'offsets = max(1, 2 * cfg.pad + 1)', "tests/test_crosscheck_authors.py"),
    ("ShakeDrop gate per sample in batch mode", "scaled/models/shakedrop.py",
     "else (u[0, :1] < p_survive).expand(n)", "else u[0] < p_survive", "tests/test_crosscheck_authors.py"),
    ("authors' WRN projection of the pre-activated input", "scaled/models/wrn.py",
     "return r + self.shortcut(x if self.authors else a)", "return r + self.shortcut(a)", "tests/test_crosscheck_authors.py"),
    ("engine drops the last partial batch when asked to keep it", "scaled/engine.py",
     "-(-n // batch) if keep else n // batch", "n // batch", "tests/test_crosscheck_authors.py"),
    ("authors' erasing aspect log-uniform", "scaled/augment.py", "if authors:\n            aspect =",
     "if False:\n            aspect =", "tests/test_crosscheck_authors.py"),
    # normalisation statistics
    ("padded statistics without the zero border", "scaled/engine.py",
     "channel_stats(d.x_train, pad=self.aug.pad, unbiased=True)", "channel_stats(d.x_train, pad=0, unbiased=True)",
     "tests/test_crosscheck_authors.py"),
    ("statistics divide by m, not m - 1", "scaled/data.py", "(m - 1 if unbiased else m)", "m", "tests/test_crosscheck_authors.py"),
    # the evaluation path
    ("evaluation in training mode", "scaled/engine.py", "        self.net.eval()\n", "        self.net.train()\n",
     "tests/test_eval_path.py"),
    ("evaluation leaves the network in eval mode", "scaled/engine.py", "        self.net.train()\n        return torch.cat(out)",
     "        return torch.cat(out)", "tests/test_eval_path.py"),
    ("evaluation normalised with swapped statistics", "scaled/engine.py",
     "normalize(x[i:i + self.cfg.eval_batch], self.data.mean, self.data.std)",
     "normalize(x[i:i + self.cfg.eval_batch], self.data.std, self.data.mean)", "tests/test_eval_path.py"),
    ("stage-2 features always in eval mode", "scaled/foca.py", "net.train(cfg.stage2_bn_train)", "net.train(False)",
     "tests/test_eval_path.py"),
    ("report picks the best stage-2 epoch", "scaled/train.py",
     "run.results.update(run.report())\n            # The number",
     "run.results.update(run.report())\n            run.results['test_error'] = min(r.get('test_error', 1) for r in run.records)\n            # The number",
     "tests/test_eval_path.py"),
    # presets and recipes (scaled/recipes.py is the table they are tested against)
    ("config default lr typo", "scaled/config.py", "lr: float = 0.03  # docs/algorithm.md", "lr: float = 0.3  # docs/algorithm.md",
     "tests/test_recipes.py"),
    ("E2E cutout milestones", "scaled/presets.py", "milestones=(0.3, 0.6, 0.8), lr_gamma=0.2",
     "milestones=(0.3, 0.6, 0.9), lr_gamma=0.2", "tests/test_recipes.py"),
    ("CIFAR-100 weak batch of 100", "scaled/presets.py", 'augment="cifar100", n_c=1000)', 'augment="cifar100", n_c=100)',
     "tests/test_recipes.py"),
    ("PyramidNet E2E weight decay", "scaled/presets.py", "lr=0.5, wd=1e-4", "lr=0.5, wd=5e-4", "tests/test_recipes.py"),
    ("fine-tuning lr", "scaled/presets.py", "_FT = dict(finetune_epochs=30, finetune_lr=1e-3",
     "_FT = dict(finetune_epochs=30, finetune_lr=1e-2", "tests/test_recipes.py"),
    ("CIFAR-100 cutout 16", "scaled/augment.py", '"cifar100": AugmentConfig(cutout=8)', '"cifar100": AugmentConfig(cutout=16)',
     "tests/test_recipes.py"),
    ("Tiny ImageNet pad 4", "scaled/augment.py", '"tinyimagenet": AugmentConfig(pad=8, cutout=16)',
     '"tinyimagenet": AugmentConfig(pad=4, cutout=16)', "tests/test_recipes.py"),
    ("paper presets hold out a validation split", "scaled/config.py", "    val_size: int = 0\n",
     "    val_size: int = 5000\n", "tests/test_recipes.py"),
    # the data split and the head
    ("validation split from the front", "scaled/data.py", "mask[-val_size:] = True", "mask[:val_size] = True",
     "tests/test_scaled_data.py"),
    ("head D without its second BN1d layer", "scaled/models/head.py", "for _ in range(layers):",
     "for _ in range(layers - 1):", "tests/test_scaled_models.py tests/test_crosscheck_authors.py"),
    ("head without the ReLU before pooling", "scaled/models/head.py", "z = torch.relu(self.bn(z))  # (N, C, h, w)",
     "z = self.bn(z)  # (N, C, h, w)", "tests/test_crosscheck_authors.py"),
    # the feature statistics and the numbers the reports print (issue 25: every one of these first
    # survived the whole default suite, or had no test of its own)
    ("Fisher eigenvalue from pinv(S_b) S_w", "minifoca/metrics.py", "np.linalg.pinv(s_w, rcond=1e-10) @ s_b",
     "np.linalg.pinv(s_b, rcond=1e-10) @ s_w", "tests/test_metrics.py"),
    ("within-class spread from tr(S_b)", "minifoca/metrics.py", "np.sqrt(tw / max(tw + tb, 1e-300))",
     "np.sqrt(tb / max(tw + tb, 1e-300))", "tests/test_metrics.py"),
    ("trace ratio inverted", "minifoca/metrics.py", "tb / max(tw, 1e-300)", "tw / max(tb, 1e-300)", "tests/test_metrics.py"),
    ("S_b not weighted by class size", "minifoca/metrics.py", "s_b += len(fk) * np.outer(mk - m, mk - m)",
     "s_b += len(f) / len(np.unique(t)) * np.outer(mk - m, mk - m)", "tests/test_metrics.py"),
    ("S_w about the overall mean", "minifoca/metrics.py", "s_w += (fk - mk).T @ (fk - mk)",
     "s_w += (fk - m).T @ (fk - m)", "tests/test_metrics.py"),
    ("S_w divided by N - 1", "minifoca/metrics.py", "return s_w / len(f), s_b / len(f)",
     "return s_w / (len(f) - 1), s_b / len(f)", "tests/test_metrics.py"),
    ("pseudo-inverse keeps rounding-level directions", "minifoca/metrics.py", "pinv(s_w, rcond=1e-10)",
     "pinv(s_w, rcond=1e-20)", "tests/test_metrics.py"),
    ("few-label sets drawn with replacement", "minifoca/foca.py", "cfg.few_labels, replace=False)",
     "cfg.few_labels, replace=True)", "tests/test_few_label.py"),
    ("few-label sets are each class's first examples", "minifoca/foca.py",
     "rng.choice(np.flatnonzero(t_host == k), cfg.few_labels, replace=False)",
     "np.flatnonzero(t_host == k)[:cfg.few_labels]", "tests/test_few_label.py"),
    ("few-label error of the last draw only", "minifoca/foca.py", "return float(np.mean(errs))",
     "return float(errs[-1])", "tests/test_few_label.py"),
    ("report std over seeds with ddof 0", "scaled/report_runs.py", "(float(v.std(ddof=1)) if len(v) > 1 else None)",
     "(float(v.std()) if len(v) > 1 else None)", "tests/test_report_numbers.py"),
    ("report mean keeps diverged runs", "scaled/report_runs.py", "if x is not None and math.isfinite(x)",
     "if x is not None", "tests/test_report_numbers.py"),
    ("budget std with ddof 0", "scripts/studies/budget.py", "float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)]",
     "float(v.std()) if len(v) > 1 else 0.0, len(v)]", "tests/test_report_numbers.py"),
    ("digits claims std with ddof 0", "scripts/studies/digits_claims.py", "v.std(ddof=1) if len(v) > 1 else 0",
     "v.std() if len(v) > 1 else 0", "tests/test_report_numbers.py"),
    ("toy report std with ddof 0", "toy/report.py", '"std": float(v.std(ddof=1)) if len(v) > 1 else 0.0',
     '"std": float(v.std()) if len(v) > 1 else 0.0', "tests/test_report_numbers.py"),
    ("engine error as a float32 mean", "scaled/engine.py", "return int((logits.argmax(1) != y).sum()) / len(y)",
     "return float((logits.argmax(1) != y).float().mean())", "tests/test_report_numbers.py"),
    ("report statistics of the validation features", "scaled/engine.py",
     'f, y = self.features("test")\n            out.update(feature_stats',
     'f, y = self.features("val")\n            out.update(feature_stats', "tests/test_report_numbers.py"),
    ("time projection keeps the warm-up epoch", "scaled/report_time.py", ".extend(vals[1:] or vals)", ".extend(vals)",
     "tests/test_report_numbers.py"),
    ("time projection counts the dropped last batch", "scaled/report_time.py",
     'images = n if cfg.get("last_batch", "drop") == "keep" else n // batch * batch', "images = n",
     "tests/test_report_numbers.py"),
    # state: evaluation must leave the network as it found it (the tests compare against copies)
    ("evaluation refreshes BN statistics on the split", "scaled/engine.py", "        self.net.eval()\n        out = []",
     "        self.net.train()\n        self.net.compute_features(self._prepare(normalize(x[:self.cfg.eval_batch], "
     "self.data.mean, self.data.std)))\n        self.net.eval()\n        out = []", "tests/test_eval_path.py"),
    ("minifoca evaluation features in train mode", "minifoca/foca.py",
     "compute_features(model, x[i:i + batch], train=False)", "compute_features(model, x[i:i + batch], train=True)",
     "tests/test_crosscheck.py"),
]


def run_one(name, rel, old, new, tests: str) -> tuple[str, float, str]:
    """-> (result, seconds, the first failing test: what caught the mutation)."""
    with tempfile.TemporaryDirectory(prefix="mutate_") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "figures",
                                                                  ".cache", "__pycache__", "*.egg-info"))
        path = copy / rel
        text = path.read_text()
        if text.count(old) != 1:
            return f"NOT APPLIED ({old!r} found {text.count(old)} times in {rel})", 0.0, ""
        path.write_text(text.replace(old, new))
        tic = time.perf_counter()
        # PYTHONPATH first so the copy's packages shadow the editable install of the checkout
        env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "FOCA_CACHE": str(REPO / ".cache"),
               "FOCA_DATA": os.environ.get("FOCA_DATA", str(REPO.parent / "shared" / "data")),
               "FOCA_V1_DIR": os.environ.get("FOCA_V1_DIR", str(REPO.parent / "shared" / "ref" / "FOCA-v1")),
               "OMP_NUM_THREADS": "1"}
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                            *shlex.split(tests)], cwd=copy, capture_output=True, text=True, env=env)
        first = next((line.split()[1] for line in r.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))), "")
        if r.returncode == 0 and " passed" not in r.stdout:  # everything skipped: nothing was tested
            return "ERROR (no test ran)", time.perf_counter() - tic, first
        return ("caught" if r.returncode == 1 else "SURVIVED" if r.returncode == 0
                else f"ERROR (pytest exit {r.returncode})"), time.perf_counter() - tic, first


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.dev.mutate",
                                description="break one line at a time; the tests must fail")
    p.add_argument("--only", default="", help="run the mutations whose name contains this")
    p.add_argument("--tests", default=DEFAULT_TESTS)
    args = p.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.only in m[0]]
    print(f"mutate: {len(chosen)} mutations, each on a copy of the tree; about 10 s each", file=sys.stderr)
    print("| mutation | file | result | first failing test |\n|---|---|---|---|")
    bad = 0
    for name, rel, old, new, *tests in chosen:  # a 5th element: the tests for that mutation
        result, secs, first = run_one(name, rel, old, new, tests[0] if tests else args.tests)
        bad += result != "caught"
        print(f"| {name} | {rel} | {result} ({secs:.0f} s) | {first.removeprefix('tests/')} |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
