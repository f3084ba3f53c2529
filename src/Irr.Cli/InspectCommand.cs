using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Cli;

/// <summary>
/// <c>irr inspect PATH</c>: what a model directory, a PEFT adapter directory, a single
/// .safetensors file or a PyTorch state dict (.pt, .pth, .bin) holds. The description is built once as JSON; <c>--json</c> prints it and
/// the default prints it as aligned text.
/// </summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("PATH") { Description = "A model directory, a Hub repo org/name[@revision] (from the Hugging Face cache, or downloaded), a PEFT adapter directory, a .safetensors file or a PyTorch state dict (.pt, .pth, .bin)" };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor: name, dtype and shape" };
        var json = new Option<bool>("--json") { Description = "Print machine-readable JSON" };
        var noCheck = new Option<bool>("--no-check") { Description = "Do not check a model's tensors against its config.json" };
        var command = new Command("inspect", "Describe a model, an adapter, a safetensors file or a PyTorch state dict (architecture, parameters, dtypes, shards)")
        {
            path, tensors, json, noCheck,
        };
        command.SetAction(parseResult =>
        {
            string target = ModelReference.Parse(parseResult.GetValue(path)!).Resolve().Path; // a Hub repo: from the cache, or downloaded
            var description = Inspection.Describe(target, parseResult.GetValue(tensors), !parseResult.GetValue(noCheck));
            var output = parseResult.InvocationConfiguration.Output;
            if (parseResult.GetValue(json))
                output.WriteLine(description.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            else
                output.Write(Inspection.ToText(description));
            return 0;
        });
        return command;
    }
}
