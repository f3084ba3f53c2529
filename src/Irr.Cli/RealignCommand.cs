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
        var baseModel = new Option<string>("--base") { Description = "the aligned model θ_A the fine-tune started from", Required = true };
        var finetuned = new Option<string?>("--finetuned") { Description = "the fully fine-tuned model θ_F (a model directory)" };
        var adapter = new Option<string?>("--adapter") { Description = "or θ_F as a PEFT LoRA adapter on --base" };
        var safety = new Option<string>("--safety-vector") { Description = "from irr safety-vector", Required = true };
        var fisher = new Option<string>("--fisher") { Description = "from irr fisher", Required = true };
        var calibration = new Option<string?>("--calibration") { Description = $"the task's own training data, for the Hessians (not needed with --dry-run): {CommandSupport.RecordFormats}" };
        var modules = new Option<string?>("--modules") { Description = "target modules (default: the adapter's targets for --adapter, all seven otherwise)" };
        var method = new Option<string>("--method") { Description = "irr, irr-more, fisher-only, or random-at-count (the random-removal control: with --removal-counts and --seed)", DefaultValueFactory = _ => "irr" };
        var sparsity = new Option<double>("--sparsity") { Description = "s: the fraction of candidate deltas kept (lowest Fisher); 0 removes every conflict" };
        var blocksize = new Option<int>("--blocksize") { Description = "columns per OBS block", DefaultValueFactory = _ => 128 };
        var percdamp = new Option<double>("--percdamp") { Description = "damping as a fraction of mean(diag H)", DefaultValueFactory = _ => 0.01 };
        var nsamples = new Option<int>("--nsamples") { Description = "calibration records used (the first N)", DefaultValueFactory = _ => 128 };
        var seqlen = new Option<int>("--seqlen") { Description = "calibration tokens kept per record", DefaultValueFactory = _ => 512 };
        var noRecalibrate = new Option<bool>("--no-recalibrate") { Description = "remove without compensating (ablation): θ_A where removed, θ_F elsewhere" };
        var system = CommandSupport.SystemPromptOption();
        var dtype = new Option<string>("--dtype") { Description = "output storage type: keep, bf16, f16 or f32", DefaultValueFactory = _ => "keep" };
        var dryRun = new Option<bool>("--dry-run") { Description = "identify only: print how many deltas conflict and would be removed, write nothing" };
        var output = new Option<string?>("--output", "-o") { Description = "output model directory (irr-report.json goes inside it)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };
        var removalCounts = new Option<string?>("--removal-counts") { Description = "random-at-count: the irr-report.json whose per-matrix removal counts the random masks repeat" };
        var seed = new Option<int>("--seed") { Description = "random-at-count: seed of the random masks" };

        RealignJob Build(ParseResult r) => new()
        {
            Base = r.GetValue(baseModel)!,
            Finetuned = r.GetValue(finetuned),
            Adapter = r.GetValue(adapter),
            SafetyVector = r.GetValue(safety)!,
            Fisher = r.GetValue(fisher)!,
            Calibration = r.GetValue(calibration),
            Modules = r.GetValue(modules) is { } list ? TargetModules.Parse(list) : null,
            Method = r.GetValue(method)!,
            Sparsity = r.GetValue(sparsity),
            RemovalCounts = r.GetValue(removalCounts),
            Seed = r.GetValue(seed),
            BlockSize = r.GetValue(blocksize),
            PercDamp = r.GetValue(percdamp),
            NSamples = r.GetValue(nsamples),
            SeqLen = r.GetValue(seqlen),
            Recalibrate = !r.GetValue(noRecalibrate),
            SystemPrompt = r.GetValue(system)!,
            DType = r.GetValue(dtype)!,
            DryRun = r.GetValue(dryRun),
            OutputPath = r.GetValue(output),
            Overwrite = r.GetValue(overwrite),
        };

        var command = new JobCommand("realign", "IRR step 3: remove the fine-tuning deltas that conflict with the safety vector and recalibrate the rest (SparseGPT's OBS), layer by layer", Build)
        {
            baseModel, finetuned, adapter, safety, fisher, calibration, modules, method, sparsity, removalCounts, seed, blocksize, percdamp, nsamples, seqlen,
            noRecalibrate, system, dtype, dryRun, output, overwrite,
        };
        command.Validators.Add(r =>
        {
            if ((r.GetResult(finetuned) is null) == (r.GetResult(adapter) is null)) r.AddError("give exactly one of --finetuned and --adapter");
            bool dry = r.GetValue(dryRun);
            if (!dry && r.GetResult(output) is null) r.AddError("--output is required (except with --dry-run)");
            if (!dry && r.GetResult(calibration) is null) r.AddError("--calibration is required (except with --dry-run)");
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
