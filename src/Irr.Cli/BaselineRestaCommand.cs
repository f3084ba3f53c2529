using System.CommandLine;
using System.Globalization;
using Irr.Realign;
using Irr.Realign.Baselines;

namespace Irr.Cli;

/// <summary><c>irr baseline resta</c>: W = W_F + γ·v on the target weights (<see cref="RestaJob"/>); writes the model and baseline-report.json.</summary>
internal static class BaselineRestaCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string>("--base") { Description = "the aligned model θ_A the fine-tune started from", Required = true };
        var finetuned = new Option<string?>("--finetuned") { Description = "the fully fine-tuned model θ_F (a model directory); give it or --adapter" };
        var adapter = new Option<string?>("--adapter") { Description = "or θ_F as a PEFT LoRA adapter on --base (merged in float32)" };
        var safetyVector = new Option<string>("--safety-vector") { Description = "v = θ_A − θ_U, from irr safety-vector (safetensors, or a torch.save .pt/.pth state dict)", Required = true };
        var gamma = new Option<double>("--gamma") { Description = "γ: the scale of the safety vector, W = W_F + γ·v (choose it on validation data)", DefaultValueFactory = _ => 0.5 };
        var modules = new Option<string?>("--modules") { Description = "target modules (default: those of the seven the safety vector has)" };
        var dtype = new Option<string>("--dtype") { Description = "output storage type: keep, bf16, f16 or f32", DefaultValueFactory = _ => "keep" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };
        var output = new Option<string>("--output", "-o") { Description = "output model directory (baseline-report.json goes inside it)", Required = true };

        RestaJob Build(ParseResult r) => new()
        {
            Base = r.GetValue(baseModel)!,
            Finetuned = r.GetValue(finetuned),
            Adapter = r.GetValue(adapter),
            SafetyVector = r.GetValue(safetyVector)!,
            Gamma = r.GetValue(gamma),
            Modules = r.GetValue(modules) is { } list ? TargetModules.Parse(list) : null,
            DType = r.GetValue(dtype)!,
            OutputPath = r.GetValue(output)!,
            Overwrite = r.GetValue(overwrite),
        };

        var command = new JobCommand("resta", "RESTA (Bhardwaj et al., ACL 2024): add the safety vector back to the fine-tuned model, W = W_F + γ·v", Build)
        {
            baseModel, finetuned, adapter, safetyVector, gamma, modules, dtype, overwrite, output,
        };
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            var modulesDone = report.Matrices.Select(m => m.Module).Distinct();
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"γ = {job.Gamma}: {report.Matrices.Count} matrices ({string.Join(", ", modulesDone)}), ‖γ·v‖ = {report.AddedNorm:G4}"));
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote the RESTA model and {RestaReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
