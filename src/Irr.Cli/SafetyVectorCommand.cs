using System.CommandLine;
using Irr.Realign;

namespace Irr.Cli;

/// <summary><c>irr safety-vector</c>: v = W_A − W_U for the target modules, as float32 safetensors (<see cref="SafetyVectorJob"/>).</summary>
internal static class SafetyVectorCommand
{
    public static Command Create()
    {
        var aligned = new Option<string>("--aligned") { Description = "the aligned model θ_A (a Hugging Face model directory)", Required = true };
        var unaligned = new Option<string?>("--unaligned") { Description = "the unaligned model θ_U: θ_A fine-tuned on harmful answers (a model directory)" };
        var unalignedAdapter = new Option<string?>("--unaligned-adapter") { Description = "or θ_U as a PEFT LoRA adapter on --aligned" };
        var modules = new Option<string>("--modules") { Description = "target modules: a comma-separated list (q_proj,v_proj …) or all", DefaultValueFactory = _ => "all" };
        var output = new Option<string>("--output", "-o") { Description = "the safety vector file (.safetensors)", Required = true };

        SafetyVectorJob Build(ParseResult r) => new()
        {
            Aligned = r.GetValue(aligned)!,
            Unaligned = r.GetValue(unaligned),
            UnalignedAdapter = r.GetValue(unalignedAdapter),
            Modules = TargetModules.Parse(r.GetValue(modules)),
            OutputPath = r.GetValue(output)!,
        };

        var command = new JobCommand("safety-vector", "IRR step 1: the safety vector v = W_aligned − W_unaligned for the target modules", Build)
        {
            aligned, unaligned, unalignedAdapter, modules, output,
        };
        command.Validators.Add(r =>
        {
            if ((r.GetResult(unaligned) is null) == (r.GetResult(unalignedAdapter) is null)) r.AddError("give exactly one of --unaligned and --unaligned-adapter");
        });
        CommandSupport.SetTensorWriterAction(command, Build);
        return command;
    }
}
