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
        var calibration = new Option<string?>("--calibration") { Description = "the task's own training data (records), for the Hessians; not needed with --dry-run" };
        var modules = new Option<string?>("--modules") { Description = "target modules (default: the adapter's targets for --adapter, all seven otherwise)" };
        var method = new Option<string>("--method") { Description = "irr, irr-more or fisher-only", DefaultValueFactory = _ => "irr" };
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
        var command = new Command("realign", "IRR step 3: remove the fine-tuning deltas that conflict with the safety vector and recalibrate the rest (SparseGPT's OBS), layer by layer")
        {
            baseModel, finetuned, adapter, safety, fisher, calibration, modules, method, sparsity, blocksize, percdamp, nsamples, seqlen,
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
            string baseDir = parseResult.GetValue(baseModel)!;
            string? fineDir = parseResult.GetValue(finetuned), adapterDir = parseResult.GetValue(adapter);
            var obs = new ObsOptions
            {
                Method = parseResult.GetValue(method) switch
                {
                    "irr" => RealignMethod.Irr,
                    "irr-more" => RealignMethod.IrrMore,
                    "fisher-only" => RealignMethod.FisherOnly,
                    var m => throw new IrrException($"--method must be irr, irr-more or fisher-only, not '{m}'"),
                },
                Sparsity = parseResult.GetValue(sparsity),
                BlockSize = parseResult.GetValue(blocksize),
                PercDamp = parseResult.GetValue(percdamp),
                Recalibrate = !parseResult.GetValue(noRecalibrate),
            };
            if (obs.Sparsity is < 0 or > 1) throw new IrrException($"--sparsity must be between 0 and 1, not {obs.Sparsity}");
            if (obs.BlockSize < 1) throw new IrrException($"--blocksize must be at least 1, not {obs.BlockSize}");
            if (obs.PercDamp < 0) throw new IrrException($"--percdamp must not be negative, not {obs.PercDamp}");
            TensorDType? outputDType = parseResult.GetValue(dtype) switch
            {
                "keep" => null,
                "bf16" or "bfloat16" => TensorDType.BF16,
                "f16" or "fp16" or "float16" => TensorDType.F16,
                "f32" or "fp32" or "float32" => TensorDType.F32,
                var d => throw new IrrException($"--dtype must be keep, bf16, f16 or f32, not '{d}'"),
            };
            bool dry = parseResult.GetValue(dryRun);
            string? outDir = parseResult.GetValue(output);
            // Refuse a bad output before the hours of work.
            var inputs = new[] { baseDir, fineDir ?? adapterDir! };
            if (!dry) OutputDirectory.Create(outDir!, inputs, parseResult.GetValue(overwrite)).Dispose();

            using var aligned = CheckpointWeights.Open(baseDir);
            using var theta = fineDir is not null ? CheckpointWeights.Open(fineDir) : CheckpointWeights.Open(baseDir, adapterDir);
            var targets = parseResult.GetValue(modules) is { } list
                ? TargetModules.Parse(list)
                : theta.Adapter is { } lora ? AdapterTargets(lora) : TargetModules.All;
            using var vFile = SafetensorsFile.Open(parseResult.GetValue(safety)!);
            using var fFile = SafetensorsFile.Open(parseResult.GetValue(fisher)!);
            var realigner = new Realigner(aligned, theta, vFile, fFile, new RealignOptions { Modules = targets, Obs = obs, OutputDType = outputDType });
            int total = theta.Config.NumHiddenLayers * targets.Count;
            var header = Header(parseResult, baseDir, fineDir, adapterDir, targets, obs, outputDType);
            var err = parseResult.InvocationConfiguration.Error;

            RealignReport report = null!;
            if (dry)
            {
                CommandSupport.WithProgress(parseResult, "identifying", total, step => report = realigner.Identify(_ => step(1, 0)));
                PrintTable(parseResult, report, dry: true);
                return 0;
            }
            string tokenizerDir = fineDir ?? baseDir;
            var tokenizer = PretrainedTokenizer.Load(tokenizerDir);
            int n = parseResult.GetValue(nsamples), len = parseResult.GetValue(seqlen);
            if (n < 1 || len < 1) throw new IrrException("--nsamples and --seqlen must be at least 1");
            var records = TrainingRecord.Load(parseResult.GetValue(calibration)!).Take(n).ToList();
            var calib = CommandSupport.Encode(tokenizer, records, SystemPrompt.Resolve(parseResult.GetValue(system)), len).Select(e => e.InputIds).ToList();
            CommandSupport.WithProgress(parseResult, $"realigning ({total} matrices)", total, step =>
                report = RealignedModel.Write(realigner, calib, outDir!, theta.Config, tokenizerDir, inputs, parseResult.GetValue(overwrite), header, outputDType,
                    m => step(1, 0)));
            PrintTable(parseResult, report, dry: false);
            err.WriteLine($"wrote the realigned model and {RealignedModel.ReportFile} to {outDir}");
            return 0;
        });
        return command;
    }

    private static IReadOnlyList<string> AdapterTargets(LoraAdapter adapter)
    {
        if (adapter.Config.TargetModulesRegex is { } regex)
            throw new IrrException($"{adapter.Path}: target_modules is the regular expression '{regex}'; give --modules explicitly");
        var targets = TargetModules.All.Where(adapter.Config.TargetModules.Contains).ToList();
        if (targets.Count == 0)
            throw new IrrException($"{adapter.Path}: target_modules ({string.Join(", ", adapter.Config.TargetModules)}) names none of {string.Join(", ", TargetModules.All)}; give --modules");
        return targets;
    }

    private static JsonObject Header(ParseResult r, string baseDir, string? fineDir, string? adapterDir, IReadOnlyList<string> targets, ObsOptions obs, TensorDType? dtype) => new()
    {
        ["irr_version"] = Program.Version,
        ["inputs"] = new JsonObject
        {
            ["base"] = Path.GetFullPath(baseDir),
            ["finetuned"] = fineDir is null ? null : Path.GetFullPath(fineDir),
            ["adapter"] = adapterDir is null ? null : Path.GetFullPath(adapterDir),
            ["safety_vector"] = Path.GetFullPath(r.GetValue<string>("--safety-vector")!),
            ["fisher"] = Path.GetFullPath(r.GetValue<string>("--fisher")!),
            ["calibration"] = r.GetValue<string?>("--calibration") is { } c ? Path.GetFullPath(c) : null,
        },
        ["options"] = new JsonObject
        {
            ["modules"] = new JsonArray(targets.Select(t => (JsonNode?)t).ToArray()),
            ["method"] = r.GetValue<string>("--method"),
            ["sparsity"] = obs.Sparsity,
            ["blocksize"] = obs.BlockSize,
            ["percdamp"] = obs.PercDamp,
            ["nsamples"] = r.GetValue<int>("--nsamples"),
            ["seqlen"] = r.GetValue<int>("--seqlen"),
            ["recalibrate"] = obs.Recalibrate,
            ["system_prompt"] = r.GetValue<string>("--system-prompt"),
            ["dtype"] = dtype?.ToTorchName() ?? "keep",
        },
    };

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
