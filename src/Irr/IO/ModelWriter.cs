using System.Text.Json.Nodes;

namespace Irr.IO;

/// <summary>Where and how a <see cref="ModelWriter"/> writes a model directory.</summary>
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
/// The one writer of Hugging Face model directories (realign, train, the demo, baselines), an object its caller
/// drives: <see cref="Open"/> (a temporary directory, <see cref="OutputDirectory"/>), <see cref="Write"/> each tensor in
/// order (sharded safetensors with an index when needed, <see cref="CheckpointWriter"/>), the command's own files
/// through <see cref="PathOf"/>, then <see cref="Commit"/>: config.json and the files that travel with the model are
/// written and the directory is renamed into place. Disposing without a commit removes the temporary directory.
/// </summary>
public sealed class ModelWriter : IDisposable
{
    private readonly ModelTarget target;
    private readonly ModelConfig config;
    private readonly IReadOnlyList<string> ownFiles;
    private readonly OutputDirectory output;
    private readonly CheckpointWriter tensors;

    private ModelWriter(ModelTarget target, ModelConfig config, IReadOnlyList<string> ownFiles, OutputDirectory output, CheckpointWriter tensors)
    {
        this.target = target;
        this.config = config;
        this.ownFiles = ownFiles;
        this.output = output;
        this.tensors = tensors;
    }

    /// <summary>
    /// Opens the temporary directory of <paramref name="target"/>, ready for the tensors of <paramref name="specs"/>, in order.
    /// The names in <paramref name="ownFiles"/> (files the command writes itself, e.g. a report) are never copied from
    /// <see cref="ModelTarget.FilesFrom"/>.
    /// </summary>
    /// <param name="target">Where and how to write.</param>
    /// <param name="config">The model's config.json, written back at the commit (with <see cref="ModelTarget.TorchDType"/> applied).</param>
    /// <param name="specs">The tensors, in file order, with their storage types and shapes.</param>
    /// <param name="ownFiles">The names of the command's own files, or null.</param>
    /// <exception cref="IrrException">The output exists (without overwrite) or is an input.</exception>
    public static ModelWriter Open(ModelTarget target, ModelConfig config, IReadOnlyList<TensorSpec> specs, IReadOnlyList<string>? ownFiles = null)
    {
        var output = OutputDirectory.Create(target.Directory, target.Inputs, target.Overwrite);
        try
        {
            return new ModelWriter(target, config, ownFiles ?? [], output, CheckpointWriter.Create(output, specs));
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>Writes the next tensor from float32 values, converted to its storage type.</summary>
    /// <exception cref="OperationCanceledException">A stop was requested (<see cref="Interruption"/>).</exception>
    public void Write(string name, ReadOnlySpan<float> values) => tensors.Write(name, values);

    /// <summary>Writes the next tensor from its stored bytes.</summary>
    public void WriteRaw(string name, ReadOnlySpan<byte> bytes) => tensors.WriteRaw(name, bytes);

    /// <summary>The temporary path of one of the command's own files (see <see cref="OutputDirectory.PathOf"/>).</summary>
    public string PathOf(string fileName) => output.PathOf(fileName);

    /// <summary>The temporary directory, for writers of several files (a tokenizer's).</summary>
    public string TemporaryPath => output.TemporaryPath;

    /// <summary>
    /// Completes the tensors, writes config.json, the files that travel with the model (except the own files) and the
    /// model card when given (which replaces the input folder's README.md), and renames the directory into place.
    /// </summary>
    /// <param name="card">The model card (<see cref="ModelCard"/>), or null for none.</param>
    /// <exception cref="InvalidOperationException">A planned tensor was not written.</exception>
    public void Commit(ModelCard? card = null)
    {
        tensors.Complete();
        tensors.Dispose();
        JsonFiles.WriteFile(output.PathOf("config.json"), ConfigJson(config, target.TorchDType));
        if (target.FilesFrom is not null)
            ModelDirectory.CopyAuxiliaryFiles(target.FilesFrom, output, except: ["config.json", .. ownFiles, .. card is null ? Array.Empty<string>() : [ModelCard.FileName]]);
        card?.Write(output.PathOf(ModelCard.FileName));
        output.Commit();
    }

    /// <summary>Closes the files; without a <see cref="Commit"/>, removes the temporary directory.</summary>
    public void Dispose()
    {
        tensors.Dispose();
        output.Dispose();
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
