using System.Globalization;
using Irr.IO;
using Irr.Jobs;
using Irr.Model;
using Irr.Text;
using Irr.Data;

namespace Irr.Realign;

/// <summary>What <see cref="FisherJob"/> did.</summary>
/// <param name="Records">Records used.</param>
/// <param name="Batches">Batches B.</param>
/// <param name="Tensors">Tensors written.</param>
public sealed record FisherResult(int Records, int Batches, int Tensors)
{
    /// <summary>The batches this run summed: <see cref="Batches"/>, or a shard's share of them.</summary>
    public int ShardBatches { get; init; } = Batches;
}

/// <summary>
/// IRR step 2 as a job (<c>irr fisher</c>): the diagonal empirical Fisher <c>F = (1/B) Σ_b (∂L_b/∂W)²</c> of the
/// aligned model on harmful prompt → safe answer records (IRR-SPEC step 2), written as float32 safetensors.
/// </summary>
[Job("fisher", Help = "IRR step 2: the diagonal empirical Fisher F = mean over batches of squared gradients, on safety data",
    OutputExtension = ".safetensors", Produces = ArtifactKind.Fisher)]
public sealed record FisherJob : IJob<FisherResult>
{
    /// <summary>The aligned model θ_A (a Hugging Face model directory).</summary>
    [Option("the aligned model θ_A (a Hugging Face model directory)", Kind = OptionKind.Input, Hub = true, Required = true)]
    public required string Model { get; init; }

    /// <summary>The safety data: harmful prompts with the aligned model's safe answers (any record format of <c>docs/formats.md</c>).</summary>
    [Option("harmful prompts with the aligned model's safe answers: " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string Data { get; init; }

    /// <summary>Target modules M.</summary>
    [Option("target modules: a comma-separated list or all", Parser = typeof(TargetModules.OptionParser))]
    public IReadOnlyList<string> Modules { get; init; } = TargetModules.All;

    /// <summary>b: records per batch (IRR-SPEC default 8).</summary>
    [Option("records per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>Tokens kept per record (the first N).</summary>
    [Option("keep the first N tokens of each record")]
    public int MaxLength { get; init; } = 1024;

    /// <summary>Use only the first N records, or null for all.</summary>
    [Option("use only the first N records (default: all)")]
    public int? NumSamples { get; init; }

    /// <summary>The system prompt: none, llama2 or literal text (<see cref="SystemPrompt.Resolve"/>).</summary>
    [Option(OptionHelp.SystemPrompt)]
    public string SystemPrompt { get; init; } = "none";

    /// <summary>
    /// Tokenize the records' text as is, without the chat template (<c>--no-chat-template</c>, for base models and
    /// completion-style data; <see cref="Text.PretrainedTokenizer.RawText"/>).
    /// </summary>
    [Option(OptionHelp.NoChatTemplate)]
    public bool NoChatTemplate { get; init; }

    /// <summary>The chat template's extra variables (<c>--template-arg KEY=VALUE</c>, <see cref="Text.ChatTemplateOptions"/>).</summary>
    [Options]
    public Text.ChatTemplateOptions Chat { get; init; } = new();

    /// <summary>
    /// <c>K/N</c>: this job's shard K (0-based) of N (<see cref="ParseShard"/>), or null for the whole Fisher. A shard sums the
    /// squared gradients of the batches b with b mod N = K and writes them, unnormalised, to a partial file that
    /// <see cref="FisherMergeJob"/> combines (docs/SCALE.md).
    /// </summary>
    [Option("K/N: compute only shard K of N (batches b with b mod N = K) into a partial file; combine the N parts with irr fisher merge")]
    public string? Shard { get; init; }

    /// <summary>The Fisher file to write (.safetensors), or the partial file of a shard.</summary>
    [Option("the Fisher file (.safetensors); with --shard, this shard's partial file", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>Replace <see cref="OutputPath"/> if it exists (<see cref="OutputPolicy"/>).</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <summary><see cref="Shard"/> as (K, N), or null for the whole Fisher.</summary>
    /// <exception cref="IrrException"><see cref="Shard"/> is not K/N with 0 ≤ K &lt; N.</exception>
    public (int K, int N)? ShardNumbers() => Shard is null ? null : ParseShard(Shard);

    /// <inheritdoc/>
    public string Command => "fisher";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => [Model, Data];

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        Validation.RequireAtLeast(Command, "batch-size", BatchSize, 1);
        Validation.RequireAtLeast(Command, "max-length", MaxLength, 1);
        Validation.Require(NumSamples is null or >= 1, Command, $"num-samples must be at least 1, not {NumSamples}");
        Validation.Require(Modules.Count > 0 && Modules.All(TargetModules.All.Contains), Command, $"modules must be among {string.Join(", ", TargetModules.All)}");
        Validation.RequireSafetensorsName(Command, OutputPath);
        ShardNumbers();
    }

    /// <summary>Parses <c>K/N</c> (e.g. <c>0/4</c>) into (K, N).</summary>
    /// <exception cref="IrrException">Not two integers with 0 ≤ K &lt; N.</exception>
    public static (int Shard, int Count) ParseShard(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 && k < n)
            return (k, n);
        throw new IrrException($"fisher: shard must be K/N with 0 ≤ K < N (e.g. 0/4), not '{text}'");
    }

    /// <summary>The metadata block of the safetensors file.</summary>
    public Dictionary<string, string> Metadata(int batches) => new()
    {
        ["format"] = "pt",
        ["irr"] = "fisher",
        ["model"] = Provenance.PathOf(Model),
        ["data"] = Provenance.PathOf(Data),
        ["batches"] = batches.ToString(CultureInfo.InvariantCulture),
        ["modules"] = string.Join(",", Modules),
    };

    /// <summary>Reads and formats the data, computes F one batch at a time and writes it.</summary>
    /// <exception cref="IrrException">The model or data is missing or malformed, or a batch has no labelled token.</exception>
    public FisherResult Run(Action<JobProgress>? progress = null)
    {
        Validate();
        OutputPolicy.RequireNewFile(OutputPath, Overwrite);
        var tokenizer = PretrainedTokenizer.Load(Model).AsRawText(NoChatTemplate).WithTemplateArgs(Chat.Args);
        using var weights = CheckpointWeights.Open(Model);
        IEnumerable<TrainingRecord> records = TrainingRecord.Load(Data);
        if (NumSamples is { } n) records = records.Take(n);
        string? system = Text.SystemPrompt.Resolve(SystemPrompt);
        var examples = records.Select(r => ChatPrompt.Encode(tokenizer, r, system, MaxLength)).Select(e => (e.InputIds, e.Labels)).ToList();
        int batches = (examples.Count + BatchSize - 1) / BatchSize;
        var (shard, count) = ShardNumbers() ?? (0, 1);
        var mine = Enumerable.Range(0, batches).Where(b => b % count == shard).ToList();
        if (Shard is not null && mine.Count == 0)
            Diagnostics.Warn($"shard {shard}/{count} holds no batch: the data makes {batches} batches of {BatchSize}, so only shards 0 to {batches - 1} have work; " +
                             "its partial file holds zeros (merge still needs it; fewer shards waste no machines)");
        var stage = ProgressStage.Start(progress, Shard is null ? $"fisher ({batches} batches)" : $"fisher shard {shard}/{count} ({mine.Count} of {batches} batches)", mine.Count);
        // One batch done: its tokens are what the stage processed (the tokens/s rate).
        var (sums, summed) = Fisher.SumOfSquares(weights, examples, Modules, BatchSize, shard, count, (done, _, _) =>
            stage.Advance(1, examples.Skip(mine[done - 1] * BatchSize).Take(BatchSize).Sum(e => e.InputIds.Length)));
        var metadata = Metadata(batches);
        metadata["modules"] = string.Join(",", TargetModules.For(weights.Config, Modules));
        if (ModelFingerprint.Of(Model) is { } fingerprint) metadata[InputChecks.ModelFingerprintKey] = fingerprint; // what realign checks the file against
        if (Shard is null)
        {
            foreach (var f in sums.Values) System.Numerics.Tensors.TensorPrimitives.Divide(f, batches, f); // (1/B) Σ_b
        }
        else
        {
            metadata["irr"] = FisherMergeJob.PartialKind;
            metadata["shard"] = $"{shard}/{count}";
            metadata["shard_batches"] = summed.ToString(CultureInfo.InvariantCulture);
            metadata["records"] = examples.Count.ToString(CultureInfo.InvariantCulture);
            metadata["batch_size"] = BatchSize.ToString(CultureInfo.InvariantCulture);
            metadata["max_length"] = MaxLength.ToString(CultureInfo.InvariantCulture);
            metadata["system_prompt"] = system ?? "";
            if (NoChatTemplate) metadata["no_chat_template"] = "true";
            if (Chat.TemplateArg.Length > 0) metadata["template_args"] = string.Join("\n", Chat.TemplateArg);
            metadata["model_sha256"] = ContentHash.OfModel(Model)!;
            metadata["data_sha256"] = ContentHash.Compute(Data);
        }
        Fisher.Write(OutputPath, weights.Config, Modules, sums, metadata);
        return new FisherResult(examples.Count, batches, sums.Count) { ShardBatches = summed };
    }
}
