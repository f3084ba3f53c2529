using System.Globalization;
using Irr.IO;
using Irr.Jobs;

namespace Irr.Realign;

/// <summary>
/// <c>irr fisher merge</c>: the Fisher <c>F = (1/B) Σ_b (∂L_b/∂W)²</c> from the partial files of <c>irr fisher --shard K/N</c>,
/// K = 0 … N−1 (each holds Σ over its batches b, those with b mod N = K). The parts must come from the same model and data
/// files (SHA-256), batch size, maximum length, record count, system prompt, modules and N, with every shard present once.
/// The sums are added in shard order and divided by B in float32, so F equals the unsharded one up to float32 rounding
/// of the reordered additions (relative difference below 1e-6 per batch for the sizes tested).
/// </summary>
[Job("fisher merge", Help = "Combine the partial files of irr fisher --shard K/N into the Fisher file")]
public sealed record FisherMergeJob : IJob<FisherResult>
{
    /// <summary>The <c>irr</c> metadata value of a partial file.</summary>
    public const string PartialKind = "fisher-partial";

    // What every part must share.
    private static readonly string[] SharedKeys = ["model_sha256", "data_sha256", "batch_size", "max_length", "records", "system_prompt", "no_chat_template", "template_args", "modules", "batches"];

    /// <summary>The partial files, in any order.</summary>
    [Option("the partial files of irr fisher --shard K/N, K = 0 … N−1", HelpName = "PARTS", Positional = true, Kind = OptionKind.Input, Required = true)]
    public required IReadOnlyList<string> Parts { get; init; }

    /// <summary>The Fisher file to write (.safetensors).</summary>
    [Option("the Fisher file (.safetensors)", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>Replace <see cref="OutputPath"/> if it exists (<see cref="OutputPolicy"/>).</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <inheritdoc/>
    public string Command => "fisher merge";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Parts;

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Validation.Require(Parts.Count > 0, Command, "give the partial files of irr fisher --shard K/N");
        Validation.RequireSafetensorsName(Command, OutputPath);
    }

    /// <summary>Checks the parts, adds their sums and writes F.</summary>
    /// <exception cref="IrrException">A part is not a partial Fisher file, the parts disagree, or a shard is missing or repeated.</exception>
    public FisherResult Run(Action<JobProgress>? progress = null)
    {
        Validate();
        OutputPolicy.RequireNewFile(OutputPath, Overwrite);
        var files = new List<SafetensorsFile>();
        try
        {
            foreach (string part in Parts) files.Add(SafetensorsFile.Open(part));
            var byShard = new SortedDictionary<int, SafetensorsFile>();
            int count = -1;
            var first = files[0];
            foreach (var f in files)
            {
                if (f.Metadata.GetValueOrDefault("irr") != PartialKind)
                    throw new IrrException($"{f.Path}: not a partial Fisher file (irr fisher --shard K/N writes them)");
                foreach (string key in SharedKeys)
                    if (f.Metadata.GetValueOrDefault(key) != first.Metadata.GetValueOrDefault(key))
                        throw new IrrException($"{f.Path}: its {key} ({InputFile.Escape(f.Metadata.GetValueOrDefault(key) ?? "", 80)}) differs from {first.Path}'s ({InputFile.Escape(first.Metadata.GetValueOrDefault(key) ?? "", 80)}); the parts of one Fisher come from one model, data and options");
                var (k, n) = FisherJob.ParseShard(f.Metadata.GetValueOrDefault("shard") ?? "");
                if (count >= 0 && n != count)
                    throw new IrrException($"{f.Path}: is shard {k}/{n}, but {first.Path} is of {count} shards");
                count = n;
                if (!byShard.TryAdd(k, f)) throw new IrrException($"{f.Path}: shard {k}/{n} is given twice (also {byShard[k].Path})");
            }
            var missing = Enumerable.Range(0, count).Where(k => !byShard.ContainsKey(k)).ToList();
            if (missing.Count > 0) throw new IrrException($"{Command}: shard{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(k => $"{k}/{count}"))} missing");
            int batches = MetadataCount(first, "batches");
            int summed = byShard.Values.Sum(f => f.Metadata.ContainsKey("shard_batches") ? MetadataCount(f, "shard_batches") : 0);
            if (summed != batches) throw new IrrException($"{Command}: the shards summed {summed} batches, but the Fisher has {batches}");
            foreach (var f in files)
                if (!f.Tensors.Select(t => (t.Name, t.ShapeText)).SequenceEqual(first.Tensors.Select(t => (t.Name, t.ShapeText))))
                    throw new IrrException($"{f.Path}: holds other tensors than {first.Path}");

            var stage = ProgressStage.Start(progress, $"merging {count} shards", first.Tensors.Count, "tensors");
            var specs = first.Tensors.Select(t => new TensorSpec(t.Name, TensorDType.F32, t.Shape.ToArray())).ToList();
            var metadata = first.Metadata.Where(kv => kv.Key is "format" or "model" or InputChecks.ModelFingerprintKey or "data" or "batches" or "modules")
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            metadata["irr"] = "fisher";
            CheckpointWriter.WriteFile(OutputPath, specs, metadata, writer =>
            {
                foreach (var t in first.Tensors)
                {
                    var sum = new float[t.ElementCount];
                    foreach (var f in byShard.Values)
                        System.Numerics.Tensors.TensorPrimitives.Add(sum, f.ReadSingle(t.Name), sum);
                    System.Numerics.Tensors.TensorPrimitives.Divide(sum, batches, sum); // (1/B) Σ_b
                    writer.Write(t.Name, sum);
                    stage.Advance(1, 1);
                }
            });
            return new FisherResult(MetadataCount(first, "records"), batches, specs.Count);
        }
        finally
        {
            foreach (var f in files) f.Dispose();
        }
    }

    // A count irr wrote in a part's __metadata__; an error naming the file when it is missing or not a count (a tampered part).
    private static int MetadataCount(SafetensorsFile file, string key) =>
        int.TryParse(file.Metadata.GetValueOrDefault(key), NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            ? n
            : throw new IrrException($"{file.Path}: __metadata__ '{key}' is {(file.Metadata.TryGetValue(key, out string? v) ? $"'{InputFile.Escape(v, 40)}'" : "missing")}, not a count (a partial Fisher file as irr fisher --shard writes it?)");
}
