using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Jobs;
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
        // The realignment's inputs and tuning as irr realign declares them (RealignJob's schema); the sweep's own meaning of two.
        var realignSchema = JobSchema.Of<RealignJob>();
        var inputs = JobCommand.OptionsOf(realignSchema, o => o.Attribute.Group == RealignJob.InputGroup);
        var tuning = JobCommand.OptionsOf(realignSchema, o => o.Attribute.Group == RealignJob.TuningGroup);
        inputs.Single(o => o.Option.Key == "method").Symbol.Description = $"the points' removal rule: {RemovalMethods.Names(RemovalMethods.Sweepable)}";
        inputs.Single(o => o.Option.Key == "calibration").Symbol.Description = $"the task's own training data, for the Hessians (required: a sweep has no dry run): {OptionHelp.Records}";
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
        var safeLoraVector = new Option<string?>("--safelora-vector")
        {
            Description = "Safe LoRA's V: the paper's θ_chat − θ_base (irr safety-vector --aligned CHAT --unaligned BASE); default: --safety-vector",
        };
        var harmfulVal = new Option<string[]>("--harmful-val")
        {
            Description = $"harmful prompt sets of the validation split, one per file: {OptionHelp.PromptFormats}",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var taskVal = new Option<string>("--task-val") { Description = "task examples of the validation split (as irr eval task --data reads them)", Required = true };
        var taskMetric = new Option<string>("--task-metric") { Description = "exact, contains, gsm8k or choice", Required = true };
        var maxNew = EvalCommand.MaxNewTokensOption(256);
        var batchSize = CommandSupport.BatchSizeOption(8, "prompts");
        var judge = new EvalSafetyCommand.JudgeCommandOptions("sweep", "DIR/judge-cache.jsonl, shared by every model; with --point, the unit's own: DIR/judge-cache.LABEL.jsonl");
        var maxIncrease = new Option<double>("--max-harmful-increase") { Description = "the harmful-rate increase over θ_A the chosen point may have, a fraction (0.05 = 5 points)", DefaultValueFactory = _ => 0.05 };
        var keepModels = new Option<bool>("--keep-models") { Description = "keep every point's model directory (by default only DIR/chosen stays)" };
        var point = new Option<string?>("--point")
        {
            HelpName = "K|LABEL",
            Description = "compute only unit K into DIR and exit (a cluster array task: --point $SLURM_ARRAY_TASK_ID); K is the unit's index " +
                          "(0 to units-1, see --list-points) or one of its labels (irr-s0.5, random-s0.5, resta-g1, aligned …). Units never share a file, " +
                          "so array tasks run at once; no choice, no DIR/chosen, no sweep.json, models kept; collect with --collect",
        };
        var listPoints = new Option<bool>("--list-points")
        {
            Description = "print the units and exit without any work: from 0, one per s (its IRR point, then its random control), one per baseline point, " +
                          "then aligned and finetuned; one line each (index, a tab, its labels comma-separated), then 'units: U'",
        };
        var json = new Option<bool>("--json") { Description = "--list-points: print the units as JSON ({\"units\": [{\"index\", \"labels\"}], \"count\": U})" };
        var collect = new Option<bool>("--collect")
        {
            Description = "the step after the --point jobs: compute whatever is still missing (as a plain rerun does), then choose, write DIR/chosen, " +
                          "sweep.json and frontier.svg, and delete the unchosen models unless --keep-models; not with --point",
        };
        var output = new Option<string>("--output", "-o") { Description = "the sweep's directory (a rerun into it resumes: finished points with the same options are skipped)", Required = true };

        var engine = new EngineCommandOptions("sweep", "OUTPUT/engine-cache/LABEL.jsonl, one file per model; a given FILE.jsonl becomes FILE.LABEL.jsonl", judge.ApiKeyEnv);

        SweepJob Build(ParseResult r)
        {
            var realign = BindRealign(realignSchema, JobCommand.Given(r, [.. inputs, .. tuning]));
            string system = realign.SystemPrompt;
            bool raw = realign.NoChatTemplate;
            int tokens = r.GetValue(maxNew), batch = r.GetValue(batchSize);
            var served = engine.Build(r);
            return new SweepJob
            {
                Realign = realign,
                Safety = judge.Apply(r, new EvalSafetyJob { Prompts = r.GetValue(harmfulVal) ?? [], SystemPrompt = system, NoChatTemplate = raw, MaxNewTokens = tokens, BatchSize = batch, OutputDir = "", Engine = served }),
                Task = new EvalTaskJob { Model = "", Data = r.GetValue(taskVal)!, Metric = r.GetValue(taskMetric)!, SystemPrompt = system, NoChatTemplate = raw, MaxNewTokens = tokens, BatchSize = batch, Engine = served },
                Sparsity = SweepJob.ParseSparsity(r.GetValue(sparsity) ?? []),
                RandomControl = r.GetValue(randomControl),
                Seed = r.GetValue(seed),
                RestaGamma = SweepJob.ParseNumbers(r.GetValue(restaGamma) ?? [], "resta-gamma"),
                SafeLoraThreshold = SweepJob.ParseNumbers(r.GetValue(safeLoraThreshold) ?? [], "safelora-threshold"),
                SafeLoraVector = r.GetValue(safeLoraVector),
                MaxHarmfulIncrease = r.GetValue(maxIncrease),
                KeepModels = r.GetValue(keepModels),
                OutputPath = r.GetValue(output)!,
                Point = r.GetValue(point),
                Collect = r.GetValue(collect),
            };
        }

        var command = new JobCommand("sweep", "Choose IRR's sparsity s on validation data: realign at every s (as irr realign does), evaluate harmful rate and task score, " +
            $"and choose {SweepSelection.Rule}. The chosen model goes to DIR/chosen", Build);
        foreach (var (_, option) in inputs) command.Options.Add(option);
        foreach (var option in new Option[] { sparsity, randomControl, seed, restaGamma, safeLoraThreshold, safeLoraVector }) command.Options.Add(option);
        foreach (var (_, option) in tuning) command.Options.Add(option);
        foreach (var option in new Option[] { harmfulVal, taskVal, taskMetric, maxNew, batchSize }) command.Options.Add(option);
        judge.AddTo(command);
        engine.AddTo(command);
        foreach (var option in new Option[] { maxIncrease, keepModels, output, point, listPoints, json, collect }) command.Options.Add(option);
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var stdout = parseResult.InvocationConfiguration.Output;
            var stderr = parseResult.InvocationConfiguration.Error;
            bool list = parseResult.GetValue(listPoints);
            if (parseResult.GetValue(json) && !list) throw new IrrException("sweep: json applies to list-points only");
            if (list)
            {
                if (job.Point is not null || job.Collect) throw new IrrException("sweep: list-points does no work; give it without point and collect");
                job.Validate(); // a bad option or a missing input fails here too, before any array task is started
                job.RequireInputs();
                PrintUnits(stdout, job.Units(), parseResult.GetValue(json));
                return 0;
            }
            if (job.Point is not null)
            {
                var unit = CommandSupport.Run(parseResult, new UnitJob(job), oneBar: true);
                int count = job.Units().Count;
                foreach (var (p, dir) in unit.Points.Zip(unit.Directories))
                    stdout.WriteLine($"{p.Label}: harmful {SweepSelection.Percent(p.HarmfulRate)}, task {SweepSelection.Percent(p.TaskScore)} ({dir})");
                if (unit.Reference is { } r)
                    stdout.WriteLine($"{r.Label}: harmful {SweepSelection.Percent(r.HarmfulRate)}, task {SweepSelection.Percent(r.TaskScore)} ({unit.Directories[0]})");
                stderr.WriteLine($"unit {unit.Unit.Index} of 0..{count - 1} ({string.Join(", ", unit.Unit.Labels)}): {unit.Realigned} realignment(s) run, " +
                                 (unit.BaselinesMade > 0 ? $"{unit.BaselinesMade} baseline point(s) made, " : "") +
                                 $"{unit.Resumed} model(s) done earlier and skipped" + (unit.JudgeCache is null ? "" : $"; judge cache {unit.JudgeCache}"));
                stderr.WriteLine($"wrote {string.Join(", ", unit.Directories)}; models kept for the collect step (irr sweep … --collect -o {job.OutputPath})");
                return 0;
            }
            var result = CommandSupport.Run(parseResult, job, oneBar: true);
            PrintTable(parseResult, result);
            stderr.WriteLine($"{result.Realigned} realignment(s) run, " + (result.BaselinesMade > 0 ? $"{result.BaselinesMade} baseline point(s) made, " : "") +
                             $"{result.Resumed} point(s) or reference(s) done earlier and skipped");
            stderr.WriteLine($"units: {result.UnitsDoneEarlier} done earlier (by earlier runs or --point jobs), {result.UnitsComputed} computed now");
            stderr.WriteLine($"wrote {SweepJob.FileName}, frontier.svg and the chosen model ({result.ChosenModel}) to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    // One line per unit (index, a tab, its labels joined by commas), then "units: U"; or the same as JSON.
    private static void PrintUnits(TextWriter output, IReadOnlyList<SweepUnit> units, bool json)
    {
        if (json)
        {
            output.WriteLine(new JsonObject
            {
                ["units"] = new JsonArray(units.Select(u => (JsonNode?)new JsonObject
                    { ["index"] = u.Index, ["labels"] = new JsonArray(u.Labels.Select(l => (JsonNode?)l).ToArray()) }).ToArray()),
                ["count"] = units.Count,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return;
        }
        foreach (var u in units) output.WriteLine($"{u.Index}\t{string.Join(",", u.Labels)}");
        output.WriteLine($"units: {units.Count}");
    }

    // irr sweep --point K as a job of its own, for the progress bar: the sweep's checks, then one unit.
    private sealed class UnitJob(SweepJob sweep) : IJob<SweepUnitResult>
    {
        public string Command => sweep.Command;
        public IReadOnlyList<string> Inputs => sweep.Inputs;
        public string? Output => sweep.Output;
        public void Validate() => sweep.Validate();
        public SweepUnitResult Run(Action<JobProgress>? progress = null) => sweep.RunUnit(progress);
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
            table.AddRow(Markup.Escape(p.Label), p.Setting.ToString(CultureInfo.InvariantCulture), p.IsBaseline ? "" : (100 * p.RemovedShare).ToString("F2", CultureInfo.InvariantCulture),
                P(p.HarmfulRate), P(p.TaskScore), p.IsControl ? "yes" : "", p.Label == result.Choice.Point.Label ? "<-" : "");
        console.Write(table);
        console.WriteLine($"rule: {SweepSelection.Rule}");
        console.WriteLine($"chosen: {result.Choice.Reason}");
        foreach (var (method, choice) in result.Baselines)
            console.WriteLine($"{method} at its best setting by the same rule: {choice.Reason}");
    }

    // The realignment the given options describe (no output, sparsity 0), a missing or malformed one named in the sweep's name.
    private static RealignJob BindRealign(JobSchema schema, Dictionary<string, IReadOnlyList<string>> given)
    {
        try { return schema.Bind<RealignJob>(given); }
        catch (IrrException e) when (e.Message.StartsWith(schema.Command + ": ", StringComparison.Ordinal))
        {
            throw new IrrException("sweep: " + e.Message[(schema.Command.Length + 2)..], e);
        }
    }
}
