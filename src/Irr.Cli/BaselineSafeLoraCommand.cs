using System.CommandLine;
using System.Globalization;
using Irr.Realign.Baselines;
using Spectre.Console;

namespace Irr.Cli;

/// <summary>
/// <c>irr baseline safelora</c>: Safe LoRA (Hsu et al., NeurIPS 2024): project the LoRA matrices whose update is least
/// similar to its projection onto the alignment subspace; writes a PEFT adapter with baseline-report.json (<see cref="SafeLoraJob"/>).
/// </summary>
internal static class BaselineSafeLoraCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string>("--base") { Description = "the aligned model θ_A the adapter was trained on", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "the fine-tune as a PEFT LoRA adapter on --base (Safe LoRA is defined for LoRA only)" };
        var finetuned = new Option<string?>("--finetuned") { Description = "refused: a full fine-tune has no LoRA matrices to project (use irr realign)" };
        var safetyVector = new Option<string>("--safety-vector") { Description = "from irr safety-vector, θ_A − θ_U (safetensors, or a torch.save .pt/.pth state dict)", Required = true };
        var threshold = new Option<double?>("--threshold") { Description = "τ in [-1, 1]: project the matrices whose similarity cos(C·ΔW, ΔW) is below τ; or give --layers" };
        var layers = new Option<int?>("--layers") { Description = "K ≥ 0: project the K matrices with the lowest similarity (ties: the earlier matrix); or give --threshold" };
        var output = new Option<string>("--output", "-o") { Description = "output adapter directory (adapter_config.json, adapter_model.safetensors, baseline-report.json)", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };

        SafeLoraJob Build(ParseResult r) => new()
        {
            Base = r.GetValue(baseModel)!,
            Adapter = r.GetValue(adapter),
            Finetuned = r.GetValue(finetuned),
            SafetyVector = r.GetValue(safetyVector)!,
            Threshold = r.GetValue(threshold),
            Layers = r.GetValue(layers),
            OutputPath = r.GetValue(output)!,
            Overwrite = r.GetValue(overwrite),
        };

        var command = new JobCommand("safelora",
            "Safe LoRA (Hsu et al., NeurIPS 2024): project the LoRA updates least similar to the alignment subspace onto it (B' = C·B, C = V·Vᵀ/‖V‖_F); writes a PEFT adapter",
            Build)
        {
            baseModel, adapter, finetuned, safetyVector, threshold, layers, output, overwrite,
        };
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            PrintTable(parseResult, report);
            parseResult.InvocationConfiguration.Error.WriteLine(
                $"projected {report.ProjectedCount} of {report.Matrices.Count} LoRA matrices; wrote the adapter and {SafeLoraReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    // One row per LoRA matrix: its similarity and whether it was projected.
    private static void PrintTable(ParseResult parseResult, SafeLoraReport report)
    {
        var console = CommandSupport.ConsoleFor(parseResult.InvocationConfiguration.Output);
        console.Profile.Width = Math.Max(console.Profile.Width, 100);
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("matrix");
        table.AddColumn(new TableColumn("similarity").RightAligned());
        table.AddColumn("projected");
        foreach (var m in report.Matrices)
            table.AddRow(Markup.Escape(m.Name), m.Similarity.ToString("F5", CultureInfo.InvariantCulture), m.Projected ? "yes" : "no");
        console.Write(table);
    }
}
