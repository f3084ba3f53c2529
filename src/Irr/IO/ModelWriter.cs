using System.Text.Json.Nodes;

namespace Irr.IO;

/// <summary>Where and how <see cref="ModelWriter.Write"/> writes a model directory.</summary>
/// <param name="Directory">The model directory to create.</param>
/// <param name="Inputs">Input directories the output must not be written into or over.</param>
/// <param name="Overwrite">Replace an existing output directory.</param>
/// <param name="FilesFrom">
/// The directory whose files that travel with a model (tokenizer, generation config, chat template …) are copied,
/// or null for none.
/// </param>
/// <param name="TorchDType">
/// The storage type config.json should name (<c>torch_dtype</c> set, <c>dtype</c> removed), or null to write the
/// config back unchanged.
/// </param>
public sealed record ModelTarget(string Directory, IReadOnlyList<string> Inputs, bool Overwrite = false, string? FilesFrom = null, TensorDType? TorchDType = null);

/// <summary>
/// The one writer of Hugging Face model directories (realign, train, the demo, baselines): the tensors as
/// sharded safetensors with an index when needed (<see cref="CheckpointWriter"/>), config.json, the files that
/// travel with the model, and any extra files of the producing command, all into a temporary directory that is
/// renamed into place only when everything succeeded (<see cref="OutputDirectory"/>).
/// </summary>
public static class ModelWriter
{
    /// <summary>
    /// Writes a model directory. <paramref name="writeTensors"/> writes every tensor of <paramref name="specs"/>, in
    /// order; <paramref name="extraFiles"/>, called after the tensors, writes the command's own files (e.g. a report)
    /// with <see cref="OutputDirectory.PathOf"/>; their names in <paramref name="ownFiles"/> are never copied from
    /// <see cref="ModelTarget.FilesFrom"/>.
    /// </summary>
    /// <param name="target">Where and how to write.</param>
    /// <param name="config">The model's config.json, written back (with <see cref="ModelTarget.TorchDType"/> applied).</param>
    /// <param name="specs">The tensors, in file order, with their storage types and shapes.</param>
    /// <param name="writeTensors">Writes the tensors through the checkpoint writer.</param>
    /// <param name="extraFiles">Writes the command's own files, or null.</param>
    /// <param name="ownFiles">The names of those files.</param>
    /// <exception cref="IrrException">The output exists (without overwrite) or is an input; a tensor is missing or out of order.</exception>
    public static void Write(ModelTarget target, ModelConfig config, IReadOnlyList<TensorSpec> specs, Action<CheckpointWriter> writeTensors,
        Action<OutputDirectory>? extraFiles = null, IReadOnlyList<string>? ownFiles = null)
    {
        using var output = OutputDirectory.Create(target.Directory, target.Inputs, target.Overwrite);
        using (var writer = CheckpointWriter.Create(output, specs))
        {
            writeTensors(writer);
            writer.Complete();
        }
        JsonFiles.WriteFile(output.PathOf("config.json"), ConfigJson(config, target.TorchDType));
        if (target.FilesFrom is not null)
            ModelDirectory.CopyAuxiliaryFiles(target.FilesFrom, output, except: ["config.json", .. ownFiles ?? []]);
        extraFiles?.Invoke(output);
        output.Commit();
    }

    /// <summary>config.json as written: the original keys, with <c>torch_dtype</c> set (and <c>dtype</c> removed) when <paramref name="dtype"/> is given.</summary>
    public static JsonObject ConfigJson(ModelConfig config, TensorDType? dtype)
    {
        var json = config.Json.DeepClone().AsObject();
        if (dtype is { } d)
        {
            json.Remove("dtype");
            json["torch_dtype"] = d.ToTorchName();
        }
        return json;
    }
}
