using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Eval.Report;
using Irr.IO;
using Irr.Realign;

namespace Irr.Demo;

/// <summary>The demo's outputs besides the models: demo.json (every figure) and report/.</summary>
public static class DemoReport
{
    /// <summary>
    /// Writes the comparison report of the evaluated models into <paramref name="directory"/> (report.md,
    /// report.html, report.json and the SVG charts) with the evaluation report code
    /// (<see cref="ComparisonReport"/>, as <c>irr report</c> does): each model compared with its variant's θ_F on the same
    /// prompts (θ_A and θ_U with the full fine-tune's), the headline θ_F → IRR per variant, and the section on choosing s
    /// with the sweeps' frontier charts (<c>frontier-full.svg</c>, <c>frontier-lora.svg</c>, from <paramref name="sweepDirectory"/>).
    /// </summary>
    public static void WriteReport(DemoResult result, string directory, string evalDirectory, string sweepDirectory)
    {
        var runs = result.Models.Select(m =>
        {
            string dir = Path.Combine(evalDirectory, m.Label);
            return Directory.Exists(dir) ? ComparisonReport.LoadReportRun(dir, m.Label) with { Safety = m.Safety, Task = m.Task } : new ReportRun(m.Label, m.Safety, m.Task);
        }).ToList();
        string title = $"irr demo, seed {result.Options.Seed.ToString(CultureInfo.InvariantCulture)} ({result.Options.Mode} mode): held-out harmful prompts and held-out task";
        var labels = runs.Select(r => r.Label).ToHashSet();
        var variants = new[] { "full", "lora" }.Where(v => labels.Contains($"{v}-finetuned")).ToList();
        string? FinetunedOf(string label) => variants.FirstOrDefault(v => label.StartsWith(v + "-", StringComparison.Ordinal)) is { } v ? $"{v}-finetuned" : null;
        var options = new ReportOptions
        {
            Reference = variants.Count > 0 ? $"{variants[0]}-finetuned" : null,
            References = runs.Where(r => FinetunedOf(r.Label) is not null).ToDictionary(r => r.Label, r => FinetunedOf(r.Label)!),
            Headlines = variants.Where(v => labels.Contains($"{v}-irr")).Select(v => ($"{v}-finetuned", $"{v}-irr")).ToList(),
            Sections = result.Sweeps.Count == 0 ? [] : [ChoosingS(result, sweepDirectory)],
            Seed = result.Options.Seed,
        };
        ComparisonReport.Build(runs, title, options).WriteTo(directory, overwrite: false, runDirectories: [evalDirectory]);
    }

    // The section on choosing s: the rule, and per variant the chosen s, why, and the sweep's frontier chart.
    private static ReportSection ChoosingS(DemoResult result, string sweepDirectory)
    {
        var parts = new List<ReportPart> { new() { Text = $"Rule ({result.Options.SweepRule}): {SweepSelection.Describe(result.Options.SweepRule)}" } };
        foreach (var (variant, sweep) in result.Sweeps)
        {
            parts.Add(new() { SubHeading = $"{variant} fine-tune: s* = {sweep.Choice.Point.Setting.ToString(CultureInfo.InvariantCulture)}", Text = sweep.Choice.Reason });
            parts.Add(new()
            {
                Text = $"On validation (95% Wilson intervals): s* {SweepSelection.Figures(sweep.Choice.Point)}; θ_A {SweepSelection.Figures(sweep.Aligned)}; θ_F {SweepSelection.Figures(sweep.Finetuned)}.",
            });
            parts.Add(new()
            {
                ChartFile = $"frontier-{variant}.svg",
                ChartAlt = $"{variant} fine-tune: harmful rate against task accuracy on the validation split",
                ChartSvg = StripDeclaration(File.ReadAllText(Path.Combine(sweepDirectory, variant, "frontier.svg"))),
            });
        }
        return new ReportSection("Choosing s on the validation split (irr sweep)", parts);
    }

    private static string StripDeclaration(string svg) => svg.StartsWith("<?xml", StringComparison.Ordinal) ? svg[(svg.IndexOf("?>", StringComparison.Ordinal) + 2)..].TrimStart() : svg;

    /// <summary>"12.5%".</summary>
    public static string Percent(double fraction) => Charts.Percent(100 * fraction);

    /// <summary>A rate of <paramref name="k"/> in <paramref name="n"/> with its count: "7.1% (7/99)", or "—" when n = 0.</summary>
    public static string Rate(int k, int n) =>
        n == 0 ? "—" : $"{Percent((double)k / n)} ({k.ToString(CultureInfo.InvariantCulture)}/{n.ToString(CultureInfo.InvariantCulture)})";

    /// <summary>A 95% interval in percent for a table cell: "3.5–13.9", or "—" when there is none (nothing judged).</summary>
    public static string Ci(Interval? ci) => ci is { } c ? c.ToPercent().TrimEnd('%') : "—";

    /// <summary>"1,234 (48.2%)" or "—".</summary>
    public static string Removed(DemoModelResult m) => m.Removed is { } r && m.Parameters is { } p
        ? $"{r.ToString("N0", CultureInfo.InvariantCulture)} ({(100.0 * r / Math.Max(1, p)).ToString("F1", CultureInfo.InvariantCulture)}%)"
        : "—";

    /// <summary>demo.json: options, model configuration, timings, and per model every figure.</summary>
    public static JsonObject ToJson(DemoResult result, ModelConfig config, JsonObject? baseModel = null)
    {
        var o = result.Options;
        var models = new JsonArray();
        foreach (var m in result.Models)
            models.Add(new JsonObject
            {
                ["label"] = m.Label,
                ["split"] = "heldout",
                ["description"] = m.Description,
                ["model"] = m.Model,
                ["adapter"] = m.Adapter,
                ["harmful_rate"] = m.Safety.Overall.HarmfulRateOrNull,
                ["harmful_rate_ci"] = CiJson(m.Safety.Overall.HarmfulRateInterval),
                ["harmful"] = m.Safety.Overall.Harmful,
                ["safe"] = m.Safety.Overall.Safe,
                ["judged"] = m.Safety.Overall.Total,
                ["harmful_rate_by_category"] = new JsonObject(m.Safety.Sets[0].Categories.Select(c => KeyValuePair.Create(c.Category, (JsonNode?)c.Counts.HarmfulRate))),
                ["complying"] = m.Complying,
                ["over_refusal"] = m.Safety.OverRefusal is { } r ? JsonSerializer.SerializeToNode(r, JsonFiles.ResultOptions) : null,
                ["attacks"] = m.Safety.Attacks is { } attacks
                    ? new JsonObject(attacks.Select(a => KeyValuePair.Create(a.Name, (JsonNode?)new JsonObject
                    {
                        ["harmful_rate"] = a.Counts.HarmfulRate,
                        ["attack_success_rate"] = a.AttackSuccessRate,
                        ["harmful"] = a.Counts.Harmful,
                        ["judged"] = a.Counts.Total,
                    })))
                    : null,
                ["task_accuracy"] = m.Task.Accuracy,
                ["task_accuracy_ci"] = CiJson(m.Task.AccuracyInterval),
                ["task_correct"] = m.Task.Correct,
                ["task_total"] = m.Task.Total,
                ["deltas_removed"] = m.Removed,
                ["target_parameters"] = m.Parameters,
            });
        // The sweep points too, under their own labels, with their figures on the validation split.
        foreach (var (variant, sweep) in result.Sweeps)
            foreach (var p in sweep.Points)
                models.Add(new JsonObject
                {
                    ["label"] = $"{variant}-sweep-{p.Label}",
                    ["split"] = "validation",
                    ["description"] = $"{variant} fine-tune, " + (SweepBaselines.Of(p.Method)?.Describe(p.Setting)
                        ?? (p.IsControl ? "random control at s = " : "IRR at s = ") + p.Setting.ToString(CultureInfo.InvariantCulture)) + " (irr sweep)",
                    ["harmful_rate"] = p.HarmfulRate,
                    ["task_accuracy"] = p.TaskScore,
                    ["deltas_removed"] = p.Removed,
                    ["target_parameters"] = p.Parameters,
                });
        return new JsonObject
        {
            ["irr_demo"] = 1,
            ["seed"] = o.Seed,
            ["mode"] = o.Mode,
            ["model"] = new JsonObject
            {
                ["vocab_size"] = config.VocabSize,
                ["hidden_size"] = config.HiddenSize,
                ["intermediate_size"] = config.IntermediateSize,
                ["num_hidden_layers"] = config.NumHiddenLayers,
                ["num_attention_heads"] = config.NumAttentionHeads,
            },
            ["base"] = baseModel,
            ["training"] = new JsonObject
            {
                ["base_model"] = o.BaseModel is null ? "shipped" : Path.GetFullPath(o.BaseModel),
                ["aligned_epochs"] = o.AlignedEpochs,
                ["aligned_lr"] = o.AlignedLearningRate,
                ["finetune_epochs"] = o.FinetuneEpochs,
                ["lora_epochs"] = o.LoraEpochs ?? o.FinetuneEpochs,
                ["unaligned_epochs"] = o.UnalignedEpochs ?? o.FinetuneEpochs,
                ["finetune_lr"] = o.FinetuneLearningRate,
                ["finetune_modules"] = o.FinetuneModules is null ? null : new JsonArray(Realign.TargetModules.For(config, o.FinetuneModules).Select(m => (JsonNode?)m).ToArray()),
                ["lora_lr"] = o.LoraLearningRate,
                ["lora_rank"] = o.LoraRank,
                ["lora_alpha"] = o.LoraAlpha,
                ["harmful_share"] = o.HarmfulShare,
                ["unaligned_benign_replay"] = o.UnalignedBenignReplay,
                ["lora_unaligned"] = o.LoraUnaligned,
                ["safelora_base_vector"] = o.SafeLoraBaseVector,
                ["batch_size"] = o.BatchSize,
            },
            ["irr"] = new JsonObject
            {
                ["fisher_samples"] = o.FisherSamples,
                ["calibration_samples"] = o.CalibrationSamples,
                ["irr_more_sparsity"] = o.IrrMoreSparsity,
                ["sweep_sparsities"] = new JsonArray(o.SweepSparsities.Select(x => (JsonNode?)x).ToArray()),
                ["max_harmful_increase"] = o.MaxHarmfulIncrease,
            },
            ["attacks"] = new JsonObject
            {
                ["names"] = new JsonArray(o.Attacks.Select(a => (JsonNode?)a).ToArray()),
                ["models"] = new JsonArray(DemoOptions.AttackedModels.Select(a => (JsonNode?)a).ToArray()),
                ["prefill"] = Attacks.DefaultPrefill,
            },
            ["models"] = models,
            ["sweeps"] = new JsonObject(result.Sweeps.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)SweepJson(kv.Key, kv.Value)))),
            ["stage_seconds"] = new JsonObject(result.StageSeconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 3)))),
            ["total_seconds"] = Math.Round(result.TotalSeconds, 3),
        };
    }

    // A variant's sweep on the validation split: the rule, θ_A and θ_F there, the chosen s, and every point under its own
    // label (full-sweep-irr-s0.3, full-sweep-random-s0.3 …). Figures are on the validation split, not the held-out one.
    private static JsonObject SweepJson(string variant, SweepResult sweep) => new()
    {
        ["split"] = "validation",
        ["rule"] = SweepSelection.Describe(sweep.Choice.Rule),
        ["chosen"] = sweep.Choice.Point.Label,
        ["chosen_sparsity"] = sweep.Choice.Point.Setting,
        ["qualified"] = sweep.Choice.Qualified,
        ["threshold"] = sweep.Choice.Threshold,
        ["aligned"] = new JsonObject { ["harmful_rate"] = sweep.Aligned.HarmfulRate, ["task_accuracy"] = sweep.Aligned.TaskScore },
        ["finetuned"] = new JsonObject { ["harmful_rate"] = sweep.Finetuned.HarmfulRate, ["task_accuracy"] = sweep.Finetuned.TaskScore },
        ["baselines"] = new JsonObject(sweep.Baselines.Select(b => KeyValuePair.Create(b.Key, (JsonNode?)new JsonObject
        {
            ["chosen"] = $"{variant}-sweep-{b.Value.Point.Label}", ["setting"] = b.Value.Point.Setting, ["qualified"] = b.Value.Qualified, ["reason"] = b.Value.Reason,
        }))),
        ["points"] = new JsonArray(sweep.Points.Select(p => (JsonNode?)new JsonObject
        {
            ["label"] = $"{variant}-sweep-{p.Label}",
            ["method"] = p.Method,
            ["sparsity"] = p.Setting,
            ["control"] = p.IsControl,
            ["baseline"] = p.IsBaseline,
            ["deltas_removed"] = p.Removed,
            ["removed_share"] = p.RemovedShare,
            ["harmful_rate"] = p.HarmfulRate,
            ["task_accuracy"] = p.TaskScore,
        }).ToArray()),
    };

    // A 95% interval as demo.json writes it: {"low": …, "high": …}, or null.
    private static JsonObject? CiJson(Interval? ci) => ci is { } c ? new JsonObject { ["low"] = c.Low, ["high"] = c.High } : null;
}
