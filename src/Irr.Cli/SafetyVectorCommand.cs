using System.CommandLine;
using Irr.IO;
using Irr.Model;
using Irr.Realign;

namespace Irr.Cli;

/// <summary><c>irr safety-vector</c>: v = W_A − W_U for the target modules, as float32 safetensors.</summary>
internal static class SafetyVectorCommand
{
    public static Command Create()
    {
        var aligned = new Option<string>("--aligned") { Description = "the aligned model θ_A (a Hugging Face model directory)", Required = true };
        var unaligned = new Option<string?>("--unaligned") { Description = "the unaligned model θ_U: θ_A fine-tuned on harmful answers (a model directory)" };
        var unalignedAdapter = new Option<string?>("--unaligned-adapter") { Description = "or θ_U as a PEFT LoRA adapter on --aligned" };
        var modules = new Option<string>("--modules") { Description = "target modules: a comma-separated list (q_proj,v_proj …) or all", DefaultValueFactory = _ => "all" };
        var output = new Option<string>("--output", "-o") { Description = "the safety vector file (.safetensors)", Required = true };
        var command = new Command("safety-vector", "IRR step 1: the safety vector v = W_aligned − W_unaligned for the target modules")
        {
            aligned, unaligned, unalignedAdapter, modules, output,
        };
        command.Validators.Add(r =>
        {
            if ((r.GetResult(unaligned) is null) == (r.GetResult(unalignedAdapter) is null)) r.AddError("give exactly one of --unaligned and --unaligned-adapter");
        });
        command.SetAction(parseResult =>
        {
            string alignedDir = parseResult.GetValue(aligned)!;
            var targets = TargetModules.Parse(parseResult.GetValue(modules));
            using var a = CheckpointWeights.Open(alignedDir);
            using var u = parseResult.GetValue(unaligned) is { } unalignedDir
                ? CheckpointWeights.Open(unalignedDir)
                : CheckpointWeights.Open(alignedDir, parseResult.GetValue(unalignedAdapter));
            var metadata = new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["irr"] = "safety-vector",
                ["aligned"] = Path.GetFullPath(alignedDir),
                ["unaligned"] = Path.GetFullPath(parseResult.GetValue(unaligned) ?? parseResult.GetValue(unalignedAdapter)!),
                ["modules"] = string.Join(",", targets),
            };
            int total = a.Config.NumHiddenLayers * targets.Count;
            CommandSupport.WithProgress(parseResult, "safety vector", total, report =>
                SafetyVector.Compute(a, u, targets, parseResult.GetValue(output)!, metadata, _ => report(1, 0)));
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote {total} tensors to {parseResult.GetValue(output)}");
            return 0;
        });
        return command;
    }
}
