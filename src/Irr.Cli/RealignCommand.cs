using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Realign;
using Irr.Text;
using Spectre.Console;

namespace Irr.Cli;

/// <summary><c>irr realign</c>: identify, remove and recalibrate, layer by layer; writes the repaired model and irr-report.json.</summary>
internal static class RealignCommand
{
    public static Command Create()
    {
        var shared = new SharedOptions(RemovalMethods.Help,
            " (not needed with --dry-run)");
        var sparsity = new Option<double>("--sparsity") { Description = "s: the fraction of candidate deltas kept (lowest Fisher); 0 removes every conflict" };
        var dryRun = new Option<bool>("--dry-run") { Description = "identify only: print how many deltas conflict and would be removed, write nothing" };
        var output = new Option<string?>("--output", "-o") { Description = "output model directory (irr-report.json goes inside it)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };
        var removalCounts = new Option<string?>("--removal-counts") { Description = "random-at-count: the irr-report.json whose per-matrix removal counts the random masks repeat" };
        var seed = new Option<int>("--seed") { Description = "random-at-count: seed of the random masks" };

        RealignJob Build(ParseResult r) => shared.Build(r) with
        {
            Sparsity = r.GetValue(sparsity),
            RemovalCounts = r.GetValue(removalCounts),
            Seed = r.GetValue(seed),
            DryRun = r.GetValue(dryRun),
            OutputPath = r.GetValue(output),
            Overwrite = r.GetValue(overwrite),
        };

        var command = new JobCommand("realign", "IRR step 3: remove the fine-tuning deltas that conflict with the safety vector and recalibrate the rest (SparseGPT's OBS), layer by layer", Build);
        shared.AddInputsTo(command);
        foreach (var option in new Option[] { sparsity, removalCounts, seed }) command.Options.Add(option);
        shared.AddTuningTo(command);
        foreach (var option in new Option[] { dryRun, output, overwrite }) command.Options.Add(option);
        command.Validators.Add(r =>
        {
            bool dry = r.GetValue(dryRun);
            if (!dry && r.GetResult(output) is null) r.AddError("--output is required (except with --dry-run)");
            if (!dry && r.GetResult(shared.Calibration) is null) r.AddError("--calibration is required (except with --dry-run)");
        });
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            PrintTable(parseResult, report, job.DryRun);
            if (!job.DryRun) parseResult.InvocationConfiguration.Error.WriteLine($"wrote the realigned model and {RealignReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
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
        public Option<string?> Calibration { get; } = new("--calibration") { Description = $"the task's own training data, for the Hessians{calibrationNote}: {CommandSupport.RecordFormats}" };
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

    // One row per module type, then the total: what was removed and how well it was compensated.
    private static void PrintTable(ParseResult parseResult, RealignReport report, bool dry)
    {
        var console = CommandSupport.ConsoleFor(parseResult.InvocationConfiguration.Output);
        console.Profile.Width = Math.Max(console.Profile.Width, 120); // a redirected output reports 80 columns
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("module");
        table.AddColumn(new TableColumn("matrices").RightAligned());
        table.AddColumn(new TableColumn("parameters").RightAligned());
        table.AddColumn(new TableColumn("conflicts").RightAligned());
        table.AddColumn(new TableColumn("removed").RightAligned());
        table.AddColumn(new TableColumn("removed %").RightAligned());
        if (!dry)
        {
            table.AddColumn(new TableColumn("OBS error").RightAligned());
            table.AddColumn(new TableColumn("retries").RightAligned());
        }
        void Row(string name, IReadOnlyCollection<ModuleReport> ms)
        {
            long p = ms.Sum(m => m.Parameters), removed = ms.Sum(m => m.Removed);
            var cells = new List<string>
            {
                name, ms.Count.ToString(CultureInfo.InvariantCulture), p.ToString("N0", CultureInfo.InvariantCulture),
                ms.Sum(m => m.Conflicts).ToString("N0", CultureInfo.InvariantCulture), removed.ToString("N0", CultureInfo.InvariantCulture),
                (p == 0 ? 0 : 100.0 * removed / p).ToString("F2", CultureInfo.InvariantCulture),
            };
            if (!dry)
            {
                cells.Add(ms.Sum(m => m.ObsError).ToString("G4", CultureInfo.InvariantCulture));
                cells.Add(ms.Sum(m => m.DampingRetries).ToString(CultureInfo.InvariantCulture));
            }
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        foreach (var g in report.Modules.GroupBy(m => m.Module)) Row(g.Key, g.ToList());
        Row("total", report.Modules);
        console.Write(table);
        if (!dry)
            console.WriteLine("time: " + string.Join(", ", report.PhaseSeconds.Select(kv => $"{kv.Key} {kv.Value:F2} s")));
    }
}
