#!/usr/bin/env python3
"""The table and plots of Scripts/reproduce.sh's results directory (issue 13, docs/results.md).

    python3 Scripts/results_table.py OUT [--plots DIR] [--commit SHA]

Reads OUT/runs/<task>/<method>/s<seed>/eval-final/eval.json (only finished runs: a DONE file), OUT/runs/<task>/start/
s<seed>/eval-final/eval.json (the SFT start evaluated with the same prompts and sampling seed), the runs' metrics.jsonl,
OUT/sft-start/<task>-validation/ (validation curve) and OUT/verifier/math/train-verifier.log (AUC). Writes OUT/table.md and, with
--plots, PNG files: bon_vs_n_<task>.png, temperature_<task>.png, diversity_<task>.png, hacking_math.png,
sft_curve.png, and steps_<task>.png (pass@1, Bo-N, distinct final answers and token entropy against training step,
from the intermediate evaluations of reproduce.sh --eval-every: OUT/runs/<task>/<method>/s<seed>/eval-vNNNNNN/, or,
when present, from reproduce.sh --steps-eval's OUT/runs/<task>/<method>/s<seed>/eval-steps/vNNNNNN/). Means are over seeds with the standard error sd/sqrt(k); differences are seed-paired (same seed = same
train prompts, evaluation prompts and sampling seed) with the standard error of the per-seed differences.
"""
import argparse
import glob
import json
import math
import os
import re
import sys

METHODS = ["start", "sft", "bon-sft", "rl-v", "rl-s", "bon-rl-v", "bon-rl-s", "bon-rlb", "bon-rlb-p"]
LABEL = {"start": "SFT start", "sft": "SFT (N′=1)", "bon-sft": "BoN-SFT (N′=8)", "rl-v": "RL-V (N′=1)",
         "rl-s": "RL-S (N′=1)", "bon-rl-v": "BoN-RL-V (N′=8)", "bon-rl-s": "BoN-RL-S (N′=8)",
         "bon-rlb": "BoN-RLB (N′=8)", "bon-rlb-p": "BoN-RLB(P) (N′=8)"}
COUNTERPART = {"bon-sft": "sft", "bon-rl-v": "rl-v", "bon-rl-s": "rl-s", "bon-rlb": "rl-s", "bon-rlb-p": "rl-s"}
NS = [1, 4, 16, 32]
TABLE_T = 1.0


def mean_se(xs):
    k = len(xs)
    if k == 0:
        return None
    m = sum(xs) / k
    if k == 1:
        return m, float("nan"), 1
    var = sum((x - m) ** 2 for x in xs) / (k - 1)
    return m, math.sqrt(var / k), k


def fmt(ms):
    if ms is None:
        return "—"
    m, se, k = ms
    return f"{m:.3f}" if math.isnan(se) else f"{m:.3f} ± {se:.3f}"


def fmt_diff(ms):
    if ms is None:
        return "—"
    m, se, k = ms
    return f"{m:+.3f}" if math.isnan(se) else f"{m:+.3f} ± {se:.3f}"


def load_evals(out):
    """evals[task][method][seed] = {(n, T): row}"""
    evals = {}
    for path in glob.glob(os.path.join(out, "runs", "*", "*", "s*", "eval-final", "eval.json")):
        run = os.path.dirname(os.path.dirname(path))
        if not os.path.exists(os.path.join(run, "DONE")):
            continue
        parts = run.split(os.sep)
        task, method, seed = parts[-3], parts[-2], int(parts[-1][1:])
        with open(path) as f:
            rep = json.load(f)
        rows = {(r["n"], round(r["temperature"], 4)): r for r in rep["rows"]}
        evals.setdefault(task, {}).setdefault(method, {})[seed] = rows
    return evals


def load_step_curves(out):
    """curves[task][method][seed] = [(step, {(n, T): row})]: the SFT start (step 0), the intermediate checkpoints
    (eval-vNNNNNN, reproduce.sh --eval-every) and the final checkpoint of every finished run."""
    curves = {}
    starts = {}
    for path in glob.glob(os.path.join(out, "runs", "*", "start", "s*", "eval-final", "eval.json")):
        run = os.path.dirname(os.path.dirname(path))
        parts = run.split(os.sep)
        starts[(parts[-3], int(parts[-1][1:]))] = path
    for run in glob.glob(os.path.join(out, "runs", "*", "*", "s*")):
        parts = run.split(os.sep)
        task, method = parts[-3], parts[-2]
        if method == "start" or not os.path.exists(os.path.join(run, "DONE")):
            continue
        seed = int(parts[-1][1:])
        pts = []
        redone = sorted(glob.glob(os.path.join(run, "eval-steps", "v*", "eval.json")))
        start_redone = os.path.join(out, "runs", task, "start", f"s{seed}", "eval-steps", "v000000", "eval.json")
        if redone:  # reproduce.sh --steps-eval: every checkpoint evaluated again by one bonfire eval; preferred
            for path in redone + ([start_redone] if os.path.exists(start_redone) else []):
                step = int(re.sub(r"\D", "", os.path.basename(os.path.dirname(path))))
                with open(path) as f:
                    rep = json.load(f)
                pts.append((step, {(r["n"], round(r["temperature"], 4)): r for r in rep["rows"]}))
            curves.setdefault(task, {}).setdefault(method, {})[seed] = sorted(pts, key=lambda x: x[0])
            continue
        paths = glob.glob(os.path.join(run, "eval-v*", "eval.json")) + glob.glob(os.path.join(run, "eval-final", "eval.json"))
        if len(paths) < 2:
            continue  # only the final checkpoint: no curve
        if (task, seed) in starts:
            paths.append(starts[(task, seed)])
        for path in paths:
            with open(path) as f:
                rep = json.load(f)
            m = re.search(r"v(\d+)\.safetensors", rep.get("checkpoint", ""))
            step = 0 if path == starts.get((task, seed)) else (int(m.group(1)) if m else None)
            if step is None:
                continue
            pts.append((step, {(r["n"], round(r["temperature"], 4)): r for r in rep["rows"]}))
        curves.setdefault(task, {}).setdefault(method, {})[seed] = sorted(pts, key=lambda x: x[0])
    return curves


def plot_step_curves(curves, pdir, plt):
    """pass@1, Bo-N at the largest N, distinct final answers and mean token entropy (when bonfire eval reports them)
    against training step, mean over seeds, T = 1 (the meta-strategy: does a BoN-aware policy keep its diversity?)."""
    written = []
    for task, per in curves.items():
        panels = [("passAtN", 1, "pass@1"), ("boN", NS[-1], f"Bo-{NS[-1]}"), ("distinctAnswers", 1, "distinct final answers per prompt"),
                  ("tokenEntropy", 1, "mean token entropy (nats)")]
        have = [pn for pn in panels if any(pn[0] in rows.get((pn[1], TABLE_T), {}) and rows.get((pn[1], TABLE_T), {}).get(pn[0]) is not None
                                           for seeds in per.values() for pts in seeds.values() for _, rows in pts)]
        if not have:
            continue
        fig, axes = plt.subplots(1, len(have), figsize=(4.2 * len(have), 3.6))
        axes = axes if len(have) > 1 else [axes]
        for ax, (key, n, title) in zip(axes, have):
            for m in METHODS[1:]:
                if m not in per:
                    continue
                bystep = {}
                for pts in per[m].values():
                    for step, rows in pts:
                        v = rows.get((n, TABLE_T), {}).get(key)
                        if v is not None:
                            bystep.setdefault(step, []).append(v)
                xs = sorted(bystep)
                if xs:
                    ax.plot(xs, [sum(bystep[x]) / len(bystep[x]) for x in xs], marker=".", label=LABEL[m])
            ax.set_xlabel("training step"); ax.set_title(f"{task}: {title}", fontsize=9); ax.grid(alpha=0.3)
        axes[-1].legend(fontsize=6)
        fig.tight_layout(); f = os.path.join(pdir, f"steps_{task}.png"); fig.savefig(f, dpi=110); plt.close(fig)
        written.append(f)
    return written


def metric(rows, n, t, key):
    r = rows.get((n, round(t, 4)))
    return None if r is None else r[key]


def diversity(rows, key):
    """A per-temperature value of the rows at TABLE_T (distinctAnswers, tokenEntropy: the same for every N), or None."""
    for (n, t), r in rows.items():
        if t == round(TABLE_T, 4) and r.get(key) is not None:
            return r[key]
    return None


def table(out, evals, commit):
    lines = [f"<!-- generated by Scripts/results_table.py from {out} (commit {commit}) -->", ""]
    for task in sorted(evals):
        per = evals[task]
        seeds_all = sorted({s for m in per.values() for s in m})
        lines.append(f"### {task}: test split, T = {TABLE_T}, mean ± s.e. over seeds {seeds_all}")
        lines.append("")
        head = "| method | seeds | " + " | ".join(f"Bo-{n}" for n in NS) + " | " + " | ".join(f"pass@{n}" for n in NS) + " |"
        lines += [head, "|" + "---|" * (2 + 2 * len(NS))]
        for m in METHODS:
            if m not in per:
                continue
            cells = []
            for key in ["boN", "passAtN"]:
                for n in NS:
                    xs = [metric(per[m][s], n, TABLE_T, key) for s in sorted(per[m])]
                    cells.append(fmt(mean_se([x for x in xs if x is not None])))
            lines.append(f"| {LABEL[m]} | {len(per[m])} | " + " | ".join(cells) + " |")
        lines.append("")
        for ref_name, ref_of in [("the N′ = 1 counterpart", lambda m: COUNTERPART.get(m)),
                                 ("the SFT start", lambda m: "start" if m != "start" else None)]:
            lines.append(f"Seed-paired differences against {ref_name} (method − reference; mean ± s.e. over common seeds):")
            lines.append("")
            lines += ["| method | reference | seeds | " + " | ".join(f"ΔBo-{n}" for n in NS) + " | "
                      + " | ".join(f"Δpass@{n}" for n in NS) + " |", "|" + "---|" * (3 + 2 * len(NS))]
            for m in METHODS:
                ref = ref_of(m)
                if m not in per or ref is None or ref not in per:
                    continue
                common = sorted(set(per[m]) & set(per[ref]))
                cells = []
                for key in ["boN", "passAtN"]:
                    for n in NS:
                        d = [metric(per[m][s], n, TABLE_T, key) - metric(per[ref][s], n, TABLE_T, key) for s in common
                             if metric(per[m][s], n, TABLE_T, key) is not None and metric(per[ref][s], n, TABLE_T, key) is not None]
                        cells.append(fmt_diff(mean_se(d)))
                lines.append(f"| {LABEL[m]} | {LABEL[ref]} | {len(common)} | " + " | ".join(cells) + " |")
            lines.append("")
        # Response diversity at TABLE_T (eval.json rows carry it per temperature, the same for every N; older
        # eval.json files without the keys show "—").
        if any(diversity(rows, "distinctAnswers") is not None for m in per.values() for rows in m.values()):
            lines.append(f"Response diversity at T = {TABLE_T} (distinct final answers per prompt among its samples; "
                         "mean token entropy of the sampling distribution, nats; mean ± s.e. over seeds):")
            lines.append("")
            lines += ["| method | seeds | distinct answers | token entropy |", "|---|---|---|---|"]
            for m in METHODS:
                if m not in per:
                    continue
                cells = []
                for key in ["distinctAnswers", "tokenEntropy"]:
                    xs = [diversity(per[m][s], key) for s in sorted(per[m])]
                    cells.append(fmt(mean_se([x for x in xs if x is not None])))
                lines.append(f"| {LABEL[m]} | {len(per[m])} | " + " | ".join(cells) + " |")
            lines.append("")
        # Best temperature per N (the T × N co-scaling), from the evaluated grid, mean over seeds.
        temps = sorted({t for m in per.values() for rows in m.values() for (_, t) in rows})
        if len(temps) > 1:
            lines.append(f"Best temperature T*(N) for Bo-N on the grid {temps} (argmax of the seed-mean Bo-N; "
                         "vertex of a quadratic fit in brackets):")
            lines.append("")
            lines += ["| method | " + " | ".join(f"T*({n})" for n in NS) + " |", "|" + "---|" * (1 + len(NS))]
            for m in METHODS:
                if m not in per:
                    continue
                cells = []
                for n in NS:
                    ys = []
                    for t in temps:
                        xs = [metric(per[m][s], n, t, "boN") for s in per[m]]
                        xs = [x for x in xs if x is not None]
                        ys.append(sum(xs) / len(xs) if xs else float("nan"))
                    best = temps[max(range(len(temps)), key=lambda i: ys[i])]
                    fit = quad_vertex(temps, ys)
                    cells.append(f"{best:g}" + (f" ({fit:.2f})" if fit is not None else ""))
                lines.append(f"| {LABEL[m]} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def quad_vertex(xs, ys):
    """Vertex of the least-squares parabola through (xs, ys), if it is a maximum inside the grid's range."""
    if len(xs) < 3 or any(math.isnan(y) for y in ys):
        return None
    import numpy as np
    a, b, c = np.polyfit(xs, ys, 2)
    if a >= 0:
        return None
    v = -b / (2 * a)
    return v if min(xs) <= v <= max(xs) else None


def read_metrics(run):
    path = os.path.join(run, "metrics.jsonl")
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if rec.get("role") == "learner":
                    out.append(rec)
    return out


def extras(out):
    lines = []
    for task in ["math", "code"]:
        d = os.path.join(out, "sft-start", task)
        pts = []
        for p in sorted(glob.glob(os.path.join(out, "sft-start", task + "-validation", "v*", "eval.json"))):
            v = int(re.sub(r"\D", "", os.path.basename(os.path.dirname(p))))
            rows = {r["n"]: r for r in json.load(open(p))["rows"]}
            pts.append((v, rows[1]["passAtN"], rows[1]["passAtNStdErr"], rows.get(4, {}).get("passAtN", float("nan"))))
        if pts:
            lines.append(f"SFT start ({task}) validation curve (step: pass@1 ± s.e., pass@4): "
                         + "; ".join(f"{v}: {p:.3f} ± {se:.3f}, {p4:.3f}" for v, p, se, p4 in pts))
            lines.append("")
    log = os.path.join(out, "verifier", "math", "train-verifier.log")
    if os.path.exists(log):
        text = open(log).read()
        auc = re.search(r"held-out AUC: (\S+)", text)
        within = re.search(r"held-out within-prompt AUC: (.*)", text)
        lines.append(f"Learned verifier (math): held-out AUC {auc.group(1) if auc else '?'} (pooled); within-prompt AUC "
                     f"{within.group(1) if within else '? (not reported by this version)'}; held-out Bo-N:")
        lines.append("")
        for m in re.finditer(r"held-out N=(\d+)\s+Bo-N \(learned\) (\S+)\s+pass@N \(= oracle Bo-N\) (\S+)", text):
            lines.append(f"- N = {m.group(1)}: Bo-N (learned) {m.group(2)}, pass@N (oracle Bo-N) {m.group(3)}")
        lines.append("")
    return lines


def plots(out, evals, pdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(pdir, exist_ok=True)
    written = []
    for task, per in evals.items():
        # Bo-N and pass@N against N.
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key, title in [(axes[0], "boN", "Bo-N"), (axes[1], "passAtN", "pass@N")]:
            for m in METHODS:
                if m not in per:
                    continue
                ys, es = [], []
                for n in NS:
                    ms = mean_se([x for x in (metric(per[m][s], n, TABLE_T, key) for s in per[m]) if x is not None])
                    ys.append(ms[0] if ms else float("nan")); es.append(0 if not ms or math.isnan(ms[1]) else ms[1])
                ax.errorbar(NS, ys, yerr=es, marker="o", capsize=2, label=LABEL[m], ls="--" if m == "start" else "-")
            ax.set_xscale("log", base=2); ax.set_xticks(NS); ax.set_xticklabels([str(n) for n in NS])
            ax.set_xlabel("N"); ax.set_ylabel(title); ax.set_title(f"{task}: {title} (T = {TABLE_T})"); ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7)
        fig.tight_layout(); f = os.path.join(pdir, f"bon_vs_n_{task}.png"); fig.savefig(f, dpi=110); plt.close(fig)
        written.append(f)
        # Accuracy against temperature per N.
        temps = sorted({t for m in per.values() for rows in m.values() for (_, t) in rows})
        if len(temps) > 1:
            fig, axes = plt.subplots(1, len(NS), figsize=(4 * len(NS), 3.6), sharey=False)
            for ax, n in zip(axes, NS):
                for m in METHODS:
                    if m not in per:
                        continue
                    ys = []
                    for t in temps:
                        xs = [x for x in (metric(per[m][s], n, t, "boN") for s in per[m]) if x is not None]
                        ys.append(sum(xs) / len(xs) if xs else float("nan"))
                    ax.plot(temps, ys, marker="o", label=LABEL[m], ls="--" if m == "start" else "-")
                    v = quad_vertex(temps, ys)
                    if v is not None:
                        ax.axvline(v, color=ax.lines[-1].get_color(), alpha=0.25, lw=1)
                ax.set_title(f"{task}: Bo-{n}"); ax.set_xlabel("temperature"); ax.grid(alpha=0.3)
            axes[0].set_ylabel("Bo-N accuracy (faint lines: fitted T*(N))"); axes[-1].legend(fontsize=6)
            fig.tight_layout(); f = os.path.join(pdir, f"temperature_{task}.png"); fig.savefig(f, dpi=110); plt.close(fig)
            written.append(f)
        # Diversity (mean token entropy of the sampled responses) and, for verifier-trained methods, r vs R.
        fig, ax = plt.subplots(figsize=(6, 4))
        hack = {}
        for m in METHODS[1:]:
            runs = sorted(glob.glob(os.path.join(out, "runs", task, m, "s*")))
            series = [read_metrics(r) for r in runs if os.path.exists(os.path.join(r, "DONE"))]
            series = [s for s in series if s]
            if not series:
                continue
            steps = sorted({rec["version"] for s in series for rec in s if "train/entropy" in rec})
            ent = []
            for v in steps:
                xs = [rec["train/entropy"] for s in series for rec in s if rec["version"] == v and "train/entropy" in rec]
                ent.append(sum(xs) / len(xs))
            ax.plot(steps, ent, label=LABEL[m])
            if m in ("rl-v", "bon-rl-v", "bon-sft") and task == "math":
                r = [(rec["version"], rec.get("reward/r_mean"), rec.get("reward/R_mean")) for s in series for rec in s]
                hack[m] = sorted(x for x in r if x[1] is not None and x[2] is not None)
        ax.set_xlabel("learner step"); ax.set_ylabel("train/entropy: token entropy of the trained sequences")
        ax.set_title(f"{task}: entropy of the update's sequences (not a diversity measure)"); ax.grid(alpha=0.3); ax.legend(fontsize=7)
        fig.tight_layout(); f = os.path.join(pdir, f"diversity_{task}.png"); fig.savefig(f, dpi=110); plt.close(fig)
        written.append(f)
        if hack:
            fig, ax = plt.subplots(figsize=(6, 4))
            for m, pts in hack.items():
                byv = {}
                for v, r, R in pts:
                    byv.setdefault(v, []).append((r, R))
                vs = sorted(byv)
                l, = ax.plot(vs, [sum(a for a, _ in byv[v]) / len(byv[v]) for v in vs], label=f"{LABEL[m]}: verifier score r")
                ax.plot(vs, [sum(b for _, b in byv[v]) / len(byv[v]) for v in vs], ls="--", color=l.get_color(),
                        label=f"{LABEL[m]}: true reward R")
            ax.set_xlabel("learner step"); ax.set_ylabel("mean over the step's samples")
            ax.set_title("math: learned-verifier score vs true reward (reward hacking)"); ax.grid(alpha=0.3)
            ax.legend(fontsize=7); fig.tight_layout()
            f = os.path.join(pdir, "hacking_math.png"); fig.savefig(f, dpi=110); plt.close(fig); written.append(f)
    written += plot_step_curves(load_step_curves(out), pdir, plt)
    # SFT start validation curve.
    fig, ax = plt.subplots(figsize=(6, 4)); any_curve = False
    for task in ["math", "code"]:
        pts = []
        for p in sorted(glob.glob(os.path.join(out, "sft-start", task + "-validation", "v*", "eval.json"))):
            v = int(re.sub(r"\D", "", os.path.basename(os.path.dirname(p))))
            rows = {r["n"]: r for r in json.load(open(p))["rows"]}
            pts.append((v, rows[1]["passAtN"], rows[1]["passAtNStdErr"]))
        if pts:
            any_curve = True
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=2,
                        label=f"{task} pass@1 (validation, T = 1)")
    if any_curve:
        ax.set_xlabel("SFT step"); ax.set_ylabel("pass@1"); ax.set_title("SFT start: validation curve"); ax.grid(alpha=0.3)
        ax.legend(); fig.tight_layout(); f = os.path.join(pdir, "sft_curve.png"); fig.savefig(f, dpi=110); written.append(f)
    plt.close(fig)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--plots", help="directory for the PNG plots")
    ap.add_argument("--commit", default="unknown")
    a = ap.parse_args()
    if not os.path.isdir(os.path.join(a.out, "runs")):
        sys.exit(f"results_table.py: {a.out} has no runs/ directory; run Scripts/reproduce.sh --out {a.out} first")
    evals = load_evals(a.out)
    if not evals:
        sys.exit(f"results_table.py: no finished runs under {a.out}/runs (a finished run has a DONE file)")
    lines = table(a.out, evals, a.commit) + extras(a.out)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if a.plots:
        for f in plots(a.out, evals, a.plots):
            print("wrote", f)


if __name__ == "__main__":
    main()
