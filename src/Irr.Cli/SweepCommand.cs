using System.CommandLine;
using System.Globalization;
using Irr.Eval;
using Irr.Realign;
using Spectre.Console;

namespace Irr.Cli;

/// <summary>
/// <c>irr sweep</c>: chooses IRR's sparsity s on validation data (<see cref="SweepJob"/>): realigns at every s, evaluates
/// every point, θ_A and θ_F, and chooses by <see cref="SweepSelection.Rule"/>; writes DIR/points, DIR/reference, DIR/chosen,
/// sweep.json and frontier.svg (docs/SWEEP.md).
/// </summary>
internal static class SweepCommand
{
    public static Command Create()
    {
        var realign = new RealignCommand.SharedOptions("the points' removal rule: irr, irr-more or fisher-only");
        realign.Calibration.Required = true; // a sweep has no dry run
        var sparsity = new Option<string[]>("--sparsity")
        {
            Description = "the values of s to try, comma-separated (e.g. 0,0.5,0.8,0.9,0.95), each in [0, 1]",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var randomControl = new Option<bool>("--random-control") { Description = "also realign, for every s, the random-removal control at that IRR point's per-matrix counts" };
        var seed = new Option<int>("--seed") { Description = "--random-control: seed of the random masks (default 0)" };
        var restaGamma = new Option<string[]>("--resta-gamma")
        {
            Description = "also evaluate the RESTA baseline (irr baseline resta) at these γ, comma-separated, as frontier points beside IRR (never chosen as s)",
            AllowMultipleArgumentsPerToken = true,
        };
        var safeLoraThreshold = new Option<string[]>("--safelora-threshold")
        {
            Description = "also evaluate the Safe LoRA baseline (irr baseline safelora, LoRA fine-tunes) at these τ, comma-separated, as frontier points (never chosen as s)",
            AllowMultipleArgumentsPerToken = true,
        };
        var harmfulVal = new Option<string[]>("--harmful-val")
        {
            Description = $"harmful prompt sets of the validation split, one per file: {CommandSupport.PromptFormats}",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var taskVal = new Option<string>("--task-val") { Description = "task examples of the validation split (as irr eval task --data reads them)", Required = true };
        var taskMetric = new Option<string>("--task-metric") { Description = "exact, contains, gsm8k or choice", Required = true };
        var maxNew = EvalCommand.MaxNewTokensOption(256);
        var batchSize = CommandSupport.BatchSizeOption(8, "prompts");
        var judge = new EvalSafetyCommand.JudgeOptions("DIR/judge-cache.jsonl, shared by every model");
        var maxIncrease = new Option<double>("--max-harmful-increase") { Description = "the harmful-rate increase over θ_A the chosen point may have, a fraction (0.05 = 5 points)", DefaultValueFactory = _ => 0.05 };
        var keepModels = new Option<bool>("--keep-models") { Description = "keep every point's model directory (by default only DIR/chosen stays)" };
        var output = new Option<string>("--output", "-o") { Description = "the sweep's directory (a rerun into it resumes: finished points with the same options are skipped)", Required = true };

        SweepJob Build(ParseResult r)
        {
            string system = r.GetValue(realign.SystemPrompt)!;
            int tokens = r.GetValue(maxNew), batch = r.GetValue(batchSize);
            return new SweepJob
            {
                Realign = realign.Build(r),
                Safety = judge.Apply(r, new EvalSafetyJob { Prompts = r.GetValue(harmfulVal) ?? [], SystemPrompt = system, MaxNewTokens = tokens, BatchSize = batch, OutputDir = "" }),
                Task = new EvalTaskJob { Model = "", Data = r.GetValue(taskVal)!, Metric = r.GetValue(taskMetric)!, SystemPrompt = system, MaxNewTokens = tokens, BatchSize = batch },
                Sparsity = SweepJob.ParseSparsity(r.GetValue(sparsity) ?? []),
                RandomControl = r.GetValue(randomControl),
                Seed = r.GetValue(seed),
                RestaGamma = SweepJob.ParseNumbers(r.GetValue(restaGamma) ?? [], "resta-gamma"),
                SafeLoraThreshold = SweepJob.ParseNumbers(r.GetValue(safeLoraThreshold) ?? [], "safelora-threshold"),
                MaxHarmfulIncrease = r.GetValue(maxIncrease),
                KeepModels = r.GetValue(keepModels),
                OutputPath = r.GetValue(output)!,
            };
        }

        var command = new JobCommand("sweep", "Choose IRR's sparsity s on validation data: realign at every s (as irr realign does), evaluate harmful rate and task score, " +
            $"and choose {SweepSelection.Rule}. The chosen model goes to DIR/chosen", Build);
        realign.AddInputsTo(command);
        foreach (var option in new Option[] { sparsity, randomControl, seed, restaGamma, safeLoraThreshold }) command.Options.Add(option);
        realign.AddTuningTo(command);
        foreach (var option in new Option[] { harmfulVal, taskVal, taskMetric, maxNew, batchSize }) command.Options.Add(option);
        judge.AddTo(command);
        foreach (var option in new Option[] { maxIncrease, keepModels, output }) command.Options.Add(option);
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var result = CommandSupport.Run(parseResult, job, oneBar: true);
            PrintTable(parseResult, result);
            var stderr = parseResult.InvocationConfiguration.Error;
            stderr.WriteLine($"{result.Realigned} realignment(s) run, " + (result.BaselinesMade > 0 ? $"{result.BaselinesMade} baseline point(s) made, " : "") +
                             $"{result.Resumed} point(s) or reference(s) done earlier and skipped");
            stderr.WriteLine($"wrote {SweepJob.FileName}, frontier.svg and the chosen model ({result.ChosenModel}) to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    // θ_A and θ_F, then one row per point; the rule and the choice below.
    private static void PrintTable(ParseResult parseResult, SweepResult result)
    {
        var console = CommandSupport.ConsoleFor(parseResult.InvocationConfiguration.Output);
        console.Profile.Width = Math.Max(console.Profile.Width, 120); // a redirected output reports 80 columns
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("model");
        foreach (string column in new[] { "s / γ / τ", "removed %", "harmful", "task" }) table.AddColumn(new TableColumn(column).RightAligned());
        table.AddColumn("control");
        table.AddColumn("chosen");
        static string P(double fraction) => SweepSelection.Percent(fraction);
        foreach (var r in new[] { result.Aligned, result.Finetuned })
            table.AddRow(Markup.Escape(r.Label == "aligned" ? "θ_A (aligned)" : "θ_F (fine-tuned)"), "", "", P(r.HarmfulRate), P(r.TaskScore), "", "");
        foreach (var p in result.Points)
            table.AddRow(Markup.Escape(p.Label), p.Sparsity.ToString(CultureInfo.InvariantCulture), p.IsBaseline ? "" : (100 * p.RemovedShare).ToString("F2", CultureInfo.InvariantCulture),
                P(p.HarmfulRate), P(p.TaskScore), p.IsControl ? "yes" : "", p.Label == result.Choice.Point.Label ? "<-" : "");
        console.Write(table);
        console.WriteLine($"rule: {SweepSelection.Rule}");
        console.WriteLine($"chosen: {result.Choice.Reason}");
        foreach (var (method, choice) in result.Baselines)
            console.WriteLine($"{method} at its best setting by the same rule: {choice.Reason}");
    }
}
