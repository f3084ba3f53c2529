using System.CommandLine;
using Irr.IO;

namespace Irr.Cli;

/// <summary><c>irr convert</c>: a PyTorch state dict or pytorch_model.bin model to safetensors (<see cref="ConvertJob"/>).</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("INPUT") { Description = "a state dict file (.pt, .pth, .bin), a model directory with pytorch_model.bin or pytorch_model.bin.index.json, or a PEFT adapter directory with adapter_model.bin" };
        var output = new Option<string>("--output", "-o") { Description = "the .safetensors file (for a file), or the model or adapter directory (for a directory)", Required = true };
        var maxShardSize = new Option<string>("--max-shard-size") { Description = "largest shard of a model directory, e.g. 5GB, 500MB, 2GiB", DefaultValueFactory = _ => "5GB" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output if it exists" };

        ConvertJob Build(ParseResult r) => new()
        {
            Input = r.GetValue(input)!,
            OutputPath = r.GetValue(output)!,
            MaxShardBytes = ConvertJob.ParseSize(r.GetValue(maxShardSize)!),
            Overwrite = r.GetValue(overwrite),
        };

        var command = new JobCommand("convert", "Convert PyTorch weights (torch.save state dict, pytorch_model.bin, adapter_model.bin) to safetensors, tensors unchanged", Build)
        {
            input, output, maxShardSize, overwrite,
        };
        CommandSupport.SetTensorWriterAction(command, Build);
        return command;
    }
}
