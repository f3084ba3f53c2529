using System.Globalization;
using Irr.Jobs;

namespace Irr.IO;

/// <summary>
/// <c>irr convert</c>: a PyTorch state dict (<c>.pt</c>/<c>.pth</c>/<c>.bin</c>, zip or legacy layout) to one safetensors
/// file, a model directory with <c>pytorch_model.bin</c> (or its shard index) to a Hugging Face safetensors
/// model directory, or a PEFT adapter directory with <c>adapter_model.bin</c> to one with <c>adapter_model.safetensors</c>. Every tensor keeps its dtype and its bytes (a view is written as its contiguous values); the
/// input is never modified, and the output is written whole or not at all.
/// </summary>
[Job("convert", Help = "Convert PyTorch weights (torch.save state dict, pytorch_model.bin, adapter_model.bin) to safetensors, tensors unchanged",
    FileInputOutputExtension = ".safetensors")]
public sealed record ConvertJob : IJob<int>
{
    /// <summary>A state dict file, or a model directory holding <see cref="ModelDirectory.TorchWeightsFile"/> or <see cref="ModelDirectory.TorchIndexFile"/>.</summary>
    [Option("a state dict file (.pt, .pth, .bin), a model directory with pytorch_model.bin or pytorch_model.bin.index.json, or a PEFT adapter directory with adapter_model.bin",
        HelpName = "INPUT", Positional = true, Kind = OptionKind.Input, Hub = true, Required = true)]
    public required string Input { get; init; }

    /// <summary>The safetensors file (for a file input) or model directory (for a directory input) to write.</summary>
    [Option("the .safetensors file (for a file), or the model or adapter directory (for a directory)", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>Largest shard of a model directory as transformers' <c>max_shard_size</c> reads it (<see cref="ParseSize"/>; its default "5GB").</summary>
    [Option("largest shard of a model directory, e.g. 5GB, 500MB, 2GiB")]
    public string MaxShardSize { get; init; } = "5GB";

    /// <summary>The model card of a converted directory (<c>--no-model-card</c>, <see cref="WriteCard"/>).</summary>
    [Options]
    public ModelCardOptions Card { get; init; } = new();

    /// <summary>Replace the output if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <summary><see cref="MaxShardSize"/> in bytes of tensor data.</summary>
    /// <exception cref="IrrException">It is not a size (<see cref="ParseSize"/>).</exception>
    public long MaxShardBytes() => ParseSize(MaxShardSize);

    /// <inheritdoc/>
    public string Command => "convert";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => [Input];

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate() =>
        Validation.Require(MaxShardBytes() > 0, Command, $"max-shard-size must be positive, not {MaxShardSize}");

    /// <summary>
    /// A size as transformers' <c>max_shard_size</c> reads it: a number of bytes, or a number with a unit,
    /// <c>GB</c>/<c>MB</c>/<c>KB</c> (powers of 10) or <c>GiB</c>/<c>MiB</c>/<c>KiB</c> (powers of 2).
    /// </summary>
    /// <exception cref="IrrException">Not such a size.</exception>
    public static long ParseSize(string text)
    {
        string s = text.Trim();
        (string Suffix, long Factor)[] units = [("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1)];
        long factor = 1;
        foreach (var (suffix, f) in units)
        {
            if (s.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                s = s[..^suffix.Length].TrimEnd();
                factor = f;
                break;
            }
        }
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || value <= 0 || value * factor >= long.MaxValue)
            throw new IrrException($"convert: max-shard-size must be a size such as 5GB, 500MB or 2GiB, not '{text}'");
        return (long)(value * factor);
    }

    /// <summary>Converts <see cref="Input"/>; returns the number of tensors written.</summary>
    /// <exception cref="IrrException">The input is missing or not a state dict, a tensor cannot be held by safetensors, or the output exists.</exception>
    public int Run(Action<JobProgress>? progress = null)
    {
        Validate();
        if (Directory.Exists(Input)) return ConvertDirectory(progress);
        if (File.Exists(Input)) return ConvertFile(progress);
        throw new IrrException($"{Input}: no such file or directory");
    }

    private int ConvertFile(Action<JobProgress>? progress)
    {
        if (OutputDirectory.RealPath(Path.GetFullPath(OutputPath)) == OutputDirectory.RealPath(Path.GetFullPath(Input)))
            throw new IrrException($"{OutputPath}: refusing to write over the input");
        OutputPolicy.RequireNewFile(OutputPath, Overwrite);
        using var file = TorchFile.Open(Input);
        var tensors = file.Tensors.Select(t => (File: file, Info: t)).ToList();
        var specs = Specs(tensors);
        var stage = ProgressStage.Start(progress, "converting", specs.Count, "tensors");
        CheckpointWriter.WriteFile(OutputPath, specs, new Dictionary<string, string> { ["format"] = "pt" }, writer => WriteAll(writer, tensors, stage));
        return specs.Count;
    }

    private int ConvertDirectory(Action<JobProgress>? progress)
    {
        if (File.Exists(Path.Combine(Input, LoraAdapter.ConfigFile))) return ConvertAdapter(progress);
        // The PyTorch layouts in transformers' order, and its shard index rules, as every command reads them.
        using var model = ModelDirectory.Open(Input, validate: false, pytorchOnly: true);
        ModelDirectory.RequireRegularAuxiliaryFiles(Input);
        var tensors = model.Tensors.Select(t => (File: (TorchFile)model.Locate(t.Name).File, Info: (TorchTensorInfo)t)).ToList();
        var specs = Specs(tensors);
        using var output = OutputDirectory.Create(OutputPath, [Input], Overwrite);
        var stage = ProgressStage.Start(progress, "converting", specs.Count, "tensors");
        using (var writer = CheckpointWriter.Create(output, specs, new CheckpointWriterOptions { MaxShardBytes = MaxShardBytes() }))
        {
            WriteAll(writer, tensors, stage);
            writer.Complete();
        }
        // Both tensors are written; where config.json ties them but their values differ, it says untied, so that every
        // version of transformers loads the head the checkpoint holds (v5 would decide so, v4 would tie).
        ModelDirectory.CopyAuxiliaryFiles(Input, output, except: model.UntiedHead ? ["config.json"] : null);
        if (model.UntiedHead) JsonFiles.WriteFile(output.PathOf("config.json"), model.Config.Json);
        WriteCard(output, "transformers");
        output.Commit();
        return specs.Count;
    }

    // A PEFT adapter directory: adapter_model.bin to adapter_model.safetensors, beside copies of its other files.
    private int ConvertAdapter(Action<JobProgress>? progress)
    {
        string bin = Path.Combine(Input, LoraAdapter.TorchWeightsFile);
        if (!File.Exists(bin)) throw new IrrException($"{Input}: a PEFT adapter without {LoraAdapter.TorchWeightsFile} to convert");
        using var file = TorchFile.Open(bin);
        ModelDirectory.RequireRegularAuxiliaryFiles(Input);
        var tensors = file.Tensors.Select(t => (File: file, Info: t)).ToList();
        var specs = Specs(tensors);
        using var output = OutputDirectory.Create(OutputPath, [Input], Overwrite);
        var stage = ProgressStage.Start(progress, "converting", specs.Count, "tensors");
        CheckpointWriter.WriteFile(output.PathOf(LoraAdapter.WeightsFile), specs, new Dictionary<string, string> { ["format"] = "pt" }, writer => WriteAll(writer, tensors, stage));
        ModelDirectory.CopyAuxiliaryFiles(Input, output);
        WriteCard(output, "peft");
        output.Commit();
        return specs.Count;
    }

    /// <summary>
    /// A converted directory's model card, unless <c>--no-model-card</c>: the input's own README.md is kept when it has
    /// one (it describes the same weights); otherwise a card naming the input as the base, written before the rename. No
    /// <c>base_model_relation</c>: the same weights in another file format are none of the Hub's four relations.
    /// </summary>
    private void WriteCard(OutputDirectory output, string library)
    {
        string path = output.PathOf(ModelCard.FileName);
        if (File.Exists(path)) return;
        Card.Of(() => new ModelCard(ModelCard.BaseModelOf(Input), library, "convert", "irr convert (PyTorch weights to safetensors, every tensor unchanged)", null,
            [("method", "convert"), ("input", ModelCard.BaseModelOf(Input)), ("max shard size", MaxShardSize)]))?.Write(path);
    }

    private static List<TensorSpec> Specs(IReadOnlyList<(TorchFile File, TorchTensorInfo Info)> tensors)
    {
        var specs = new List<TensorSpec>(tensors.Count);
        foreach (var (file, t) in tensors)
        {
            if (!Holdable.Contains(t.DType))
                throw new IrrException($"{file.Path}: tensor '{t.Name}' has dtype {t.DType}, which safetensors cannot hold");
            specs.Add(new TensorSpec(t.Name, t.DType, t.Shape.ToArray()));
        }
        return specs;
    }

    // The torch storage types TorchFile reads, each a safetensors dtype of the same bytes.
    private static readonly HashSet<TensorDType> Holdable =
    [
        TensorDType.F32, TensorDType.F16, TensorDType.BF16, TensorDType.F64,
        TensorDType.I64, TensorDType.I32, TensorDType.I16, TensorDType.I8, TensorDType.U8, TensorDType.BOOL,
    ];

    private static void WriteAll(CheckpointWriter writer, IReadOnlyList<(TorchFile File, TorchTensorInfo Info)> tensors, ProgressStage stage)
    {
        foreach (var (file, t) in tensors)
        {
            writer.WriteRaw(t.Name, file.ReadBytes(t));
            stage.Advance(1, 1);
        }
    }
}
