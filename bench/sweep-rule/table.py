"""The per-seed tables of docs/SWEEP.md, "Which rule: a measurement", from the demo runs bench/sweep-rule/measure.sh made.

Usage: python3 bench/sweep-rule/table.py OUT MODE SEED [SEED ...]
Reads OUT/MODE-seedN-RULE/demo.json and OUT/MODE-seedN-RULE/sweep/VARIANT/sweep.json for RULE default and conservative,
checks that the two runs of a seed agree on everything the rule does not decide, and prints, per seed, one row per fine-tune and rule: the s chosen on validation (its validation harmful rate and the upper
bound of its 95% Wilson interval, as sweep.json records them), then the chosen model on the held-out split (harmful k of n
with its 95% Wilson interval, whether it is within θ_A's held-out harmful rate + the allowed increase, task accuracy and its
share of θ_F's). Then a summary over the seeds. Only the standard library; the Wilson interval here is for display (the same
formula as src/Irr/Eval/Intervals.cs).
"""
import json
import math
import sys

Z95 = 1.959963984540054
RULES = ["default", "conservative"]


def wilson(k, n):
    if n == 0:
        return None
    p, z2 = k / n, Z95 * Z95
    d = 1 + z2 / n
    c = (p + z2 / (2 * n)) / d
    h = Z95 / d * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, c - h), min(1.0, c + h)


def pct(x):
    return f"{100 * x:.1f}%"


def model(demo, label):
    return next(m for m in demo["models"] if m["label"] == label)


def same_before_the_choice(out, mode, seed):
    """The two runs of a seed agree on everything the rule does not decide: θ_A's and θ_F's held-out figures, and every
    validation point of both sweeps."""
    runs = [f"{out}/{mode}-seed{seed}-{rule}" for rule in RULES]
    demos = [json.load(open(f"{r}/demo.json")) for r in runs]
    for label in ["aligned", "full-finetuned", "lora-finetuned"]:
        a, b = (model(d, label) for d in demos)
        assert (a["harmful"], a["judged"], a["task_correct"]) == (b["harmful"], b["judged"], b["task_correct"]), (seed, label)
    for variant in ["full", "lora"]:
        a, b = ([(p["label"], p["counts"]) for p in json.load(open(f"{r}/sweep/{variant}/sweep.json"))["points"]] for r in runs)
        assert a == b, (seed, variant)


def main(out, mode, seeds):
    summary = {(v, r): {"within": 0, "acc_kept": [], "harm": [], "n": 0} for v in ["full", "lora"] for r in RULES}
    for seed in seeds:
        same_before_the_choice(out, mode, seed)
        print(f"\n**Seed {seed}** ({mode} mode)\n")
        print("| fine-tune | rule | s* | validation harmful (95% upper) | qualified | held-out harmful | 95% CI | θ_A + 5 pts | within | held-out acc | / θ_F acc |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for variant in ["full", "lora"]:
            for rule in RULES:
                run = f"{out}/{mode}-seed{seed}-{rule}"
                demo = json.load(open(f"{run}/demo.json"))
                sweep = json.load(open(f"{run}/sweep/{variant}/sweep.json"))
                assert sweep["rule_name"] == rule, (run, sweep["rule_name"])
                chosen = next(p for p in sweep["points"] if p["label"] == sweep["chosen"])
                aligned, finetuned, irr = model(demo, "aligned"), model(demo, f"{variant}-finetuned"), model(demo, f"{variant}-irr")
                bound = aligned["harmful_rate"] + sweep["max_harmful_increase"]
                ci = wilson(irr["harmful"], irr["judged"])
                within = irr["harmful_rate"] <= bound + 1e-9
                kept = irr["task_accuracy"] / finetuned["task_accuracy"] if finetuned["task_accuracy"] else float("nan")
                s = summary[(variant, rule)]
                s["n"] += 1
                s["within"] += within
                s["acc_kept"].append(kept)
                s["harm"].append(irr["harmful_rate"])
                print(f"| {variant} | {rule} | {chosen['sparsity']:g} | {pct(chosen['harmful_rate'])} ({pct(chosen['harmful_rate_ci']['high'])}) | "
                      f"{'yes' if sweep['qualified'] else 'no'} | {pct(irr['harmful_rate'])} ({irr['harmful']}/{irr['judged']}) | "
                      f"{pct(ci[0])}–{pct(ci[1])} | {pct(bound)} | {'yes' if within else 'no'} | "
                      f"{pct(irr['task_accuracy'])} ({irr['task_correct']}/{irr['task_total']}) | {kept:.2f} |")
    print(f"\n**Over seeds {', '.join(map(str, seeds))}** ({mode} mode)\n")
    print("| fine-tune | rule | held-out harmful within θ_A + 5 pts | held-out harmful (mean, range) | share of θ_F's accuracy kept (mean, range) |")
    print("|---|---|---|---|---|")
    for (variant, rule), s in summary.items():
        print(f"| {variant} | {rule} | {s['within']}/{s['n']} | {pct(sum(s['harm']) / s['n'])} ({pct(min(s['harm']))}–{pct(max(s['harm']))}) | "
              f"{sum(s['acc_kept']) / s['n']:.3f} ({min(s['acc_kept']):.2f}–{max(s['acc_kept']):.2f}) |")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]])
