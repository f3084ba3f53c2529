using Irr.IO;
using Irr.Jobs;
using Irr.Model;
using Irr.Text;

namespace Irr.Eval;

/// <summary>
/// <c>irr eval ppl</c> as a job: the perplexity of a model on texts (<see cref="Perplexity"/>); returns the
/// <see cref="PerplexityRun"/> and, with <see cref="OutputDir"/>, writes perplexity.json there. The texts are read
/// before the model is loaded.
/// </summary>
[Job("eval ppl", Help = "Perplexity of the model on texts: exp(mean NLL over all predicted tokens)", SharesOutput = true)]
public sealed record EvalPplJob : IJob<PerplexityRun>
{
    /// <summary>The model directory.</summary>
    [Option(OptionHelp.Model, Kind = OptionKind.Input, Hub = true, Required = true, From = ArtifactKind.Model)]
    public required string Model { get; init; }

    /// <summary>A PEFT LoRA adapter directory merged into <see cref="Model"/> on the fly, or null.</summary>
    [Option(OptionHelp.Adapter, Kind = OptionKind.Input, Hub = true)]
    public string? Adapter { get; init; }

    /// <summary>The texts (<see cref="Perplexity.LoadTexts"/>).</summary>
    [Option("texts: .txt (one record per paragraph), or strings or records with a text field; " + OptionHelp.DataFormats, Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string Data { get; init; }

    /// <summary>Tokens kept per text (at least 2).</summary>
    [Option("keep the first N tokens of each record")]
    public int MaxLength { get; init; } = 1024;

    /// <summary>Texts scored together.</summary>
    [Option("texts per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>The run directory to write perplexity.json into (may exist), or null to write nothing.</summary>
    [Option("run directory (may exist): perplexity.json", Name = "output", Alias = "-o", Kind = OptionKind.Output, Fingerprinted = false)]
    public string? OutputDir { get; init; }

    /// <inheritdoc/>
    public string Command => "eval ppl";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Model, Adapter, Data);

    /// <inheritdoc/>
    public string? Output => OutputDir;

    /// <inheritdoc/>
    public void Validate()
    {
        Validation.RequireAtLeast(Command, "max-length", MaxLength, 2);
        Validation.RequireAtLeast(Command, "batch-size", BatchSize, 1);
    }

    /// <summary>Reads the texts and scores them (stage "scoring", in texts, with a tokens/s rate); saves the run when <see cref="OutputDir"/> is set.</summary>
    /// <exception cref="IrrException">An option is invalid, the texts or the model are missing or malformed, or no text has a token to predict.</exception>
    public PerplexityRun Run(Action<JobProgress>? progress = null)
    {
        Validate();
        if (OutputDir is not null) AtomicFile.RequireDirectoryTarget(OutputDir);
        var texts = Perplexity.LoadTexts(Data);
        var tokenizer = PretrainedTokenizer.Load(Model, Adapter);
        using var weights = CheckpointWeights.Open(Model, Adapter);
        tokenizer.RequireFits(weights.Config.VocabSize, Model);
        var stage = ProgressStage.Start(progress, "scoring", texts.Count);
        var result = Perplexity.Compute(new Transformer(weights), tokenizer, texts, MaxLength, BatchSize, (n, t) => stage.Advance(n, t));
        if (result.Tokens == 0) throw new IrrException($"{Path.GetFileName(Data)}: no token to predict (every text is shorter than 2 tokens)");
        var run = new PerplexityRun(Model, Adapter, Data, MaxLength, result.Records, result.Tokens, result.MeanNll, result.Perplexity);
        if (OutputDir is not null) run.Save(OutputDir);
        return run;
    }
}
