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
        var realign = new SharedOptions($"the points' removal rule: {RemovalMethods.Names(RemovalMethods.Sweepable)}");
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
            string system = r.GetValue(realign.SystemPrompt)!;
            bool raw = r.GetValue(realign.NoChatTemplate);
            int tokens = r.GetValue(maxNew), batch = r.GetValue(batchSize);
            var served = engine.Build(r);
            return new SweepJob
            {
                Realign = realign.Build(r),
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
        realign.AddInputsTo(command);
        foreach (var option in new Option[] { sparsity, randomControl, seed, restaGamma, safeLoraThreshold, safeLoraVector }) command.Options.Add(option);
        realign.AddTuningTo(command);
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

    /// <summary>
    /// The options <c>irr realign</c> and <c>irr sweep</c> share, with the same meaning: the inputs (base, finetuned or adapter,
    /// safety vector, Fisher, calibration, modules, method) and the realignment's tuning (blocksize, percdamp, nsamples, seqlen,
    /// no-recalibrate, system-prompt, dtype).
    /// </summary>
    /// <param name="methodDescription">The help text of --method.</param>
    /// <param name="calibrationNote">Appended to the help text of --calibration.</param>
    internal sealed class SharedOptions(string methodDescription, string calibrationNote = "")
    {
        public Option<string> Base { get; } = new("--base") { Description = "the aligned model θ_A the fine-tune started from", Required = true };
        public Option<string?> Finetuned { get; } = new("--finetuned") { Description = "the fully fine-tuned model θ_F (a model directory); give it or --adapter" };
        public Option<string?> Adapter { get; } = new("--adapter") { Description = "or θ_F as a PEFT LoRA adapter on --base" };
        public Option<string> SafetyVector { get; } = new("--safety-vector") { Description = "from irr safety-vector (safetensors, or a torch.save .pt/.pth state dict)", Required = true };
        public Option<string> Fisher { get; } = new("--fisher") { Description = "from irr fisher (safetensors, or a torch.save .pt/.pth state dict)", Required = true };
        public Option<string?> Calibration { get; } = new("--calibration") { Description = $"the task's own training data, for the Hessians{calibrationNote}: {OptionHelp.Records}" };
        public Option<string?> Modules { get; } = new("--modules") { Description = "target modules (default: the adapter's targets for --adapter, all seven otherwise)" };
        public Option<string> Method { get; } = new("--method") { Description = methodDescription, DefaultValueFactory = _ => "irr" };
        public Option<int> BlockSize { get; } = new("--blocksize") { Description = "columns per OBS block", DefaultValueFactory = _ => 128 };
        public Option<double> PercDamp { get; } = new("--percdamp") { Description = "damping as a fraction of mean(diag H)", DefaultValueFactory = _ => 0.01 };
        public Option<int> NSamples { get; } = new("--nsamples") { Description = "calibration records used (the first N)", DefaultValueFactory = _ => 128 };
        public Option<int> SeqLen { get; } = new("--seqlen") { Description = "calibration tokens kept per record", DefaultValueFactory = _ => 512 };
        public Option<bool> NoRecalibrate { get; } = new("--no-recalibrate") { Description = "remove without compensating (ablation): θ_A where removed, θ_F elsewhere" };
        public Option<string> SystemPrompt { get; } = CommandSupport.SystemPromptOption();
        public Option<bool> NoChatTemplate { get; } = CommandSupport.NoChatTemplateOption();
        public Option<string> DType { get; } = new("--dtype") { Description = "output storage type: keep, bf16, f16 or f32", DefaultValueFactory = _ => "keep" };

        /// <summary>Adds the input options and the check that exactly one of --finetuned and --adapter is given.</summary>
        public void AddInputsTo(Command command)
        {
            foreach (var option in new Option[] { Base, Finetuned, Adapter, SafetyVector, Fisher, Calibration, Modules, Method }) command.Options.Add(option);
            command.Validators.Add(r =>
            {
                if ((r.GetResult(Finetuned) is null) == (r.GetResult(Adapter) is null)) r.AddError("give exactly one of --finetuned and --adapter");
            });
        }

        /// <summary>Adds the tuning options.</summary>
        public void AddTuningTo(Command command)
        {
            foreach (var option in new Option[] { BlockSize, PercDamp, NSamples, SeqLen, NoRecalibrate, SystemPrompt, NoChatTemplate, DType }) command.Options.Add(option);
        }

        /// <summary>The realignment these options describe (no output, sparsity 0).</summary>
        public RealignJob Build(ParseResult r) => new()
        {
            Base = r.GetValue(Base)!,
            Finetuned = r.GetValue(Finetuned),
            Adapter = r.GetValue(Adapter),
            SafetyVector = r.GetValue(SafetyVector)!,
            Fisher = r.GetValue(Fisher)!,
            Calibration = r.GetValue(Calibration),
            Modules = r.GetValue(Modules) is { } list ? TargetModules.Parse(list) : null,
            Method = r.GetValue(Method)!,
            BlockSize = r.GetValue(BlockSize),
            PercDamp = r.GetValue(PercDamp),
            NSamples = r.GetValue(NSamples),
            SeqLen = r.GetValue(SeqLen),
            Recalibrate = !r.GetValue(NoRecalibrate),
            SystemPrompt = r.GetValue(SystemPrompt)!,
            NoChatTemplate = r.GetValue(NoChatTemplate),
            DType = r.GetValue(DType)!,
        };
    }
}
