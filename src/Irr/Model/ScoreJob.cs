using System.Text.Json;
using Irr.Data;
using Irr.IO;
using Irr.Jobs;
using Irr.Text;

namespace Irr.Model;

/// <summary>What <see cref="ScoreJob"/> computed.</summary>
/// <param name="Job">The job, for the provenance written with the scores.</param>
/// <param name="Examples">The records as formatted (IRR-SPEC "Formatting"): token ids and labels.</param>
/// <param name="LogProbs">Per record, the log-probability (nats) of every labelled token after the first, in order.</param>
public sealed record ScoreResult(ScoreJob Job, IReadOnlyList<EncodedExample> Examples, IReadOnlyList<List<float>> LogProbs)
{
    /// <summary>Labelled tokens scored.</summary>
    public int LabelledTokens => LogProbs.Sum(l => l.Count);

    /// <summary>The mean next-token loss over all labelled tokens (nats), or NaN when there is none.</summary>
    public double MeanLoss => LabelledTokens == 0 ? double.NaN : -LogProbs.Sum(l => l.Sum(x => (double)x)) / LabelledTokens;

    /// <summary>
    /// The scores as one JSON document: model, adapter, data, records, labelled_tokens, mean_loss and per record
    /// index, input_ids, labels, token_logprobs and loss.
    /// </summary>
    public void WriteJson(TextWriter writer)
    {
        using var buffer = new MemoryStream();
        using var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        json.WriteString("model", Job.Model);
        json.WriteString("adapter", Job.Adapter);
        json.WriteString("data", Job.Data);
        json.WriteNumber("records", Examples.Count);
        json.WriteNumber("labelled_tokens", LabelledTokens);
        if (double.IsNaN(MeanLoss)) json.WriteNull("mean_loss"); else json.WriteNumber("mean_loss", MeanLoss);
        json.WriteStartArray("scores");
        for (int i = 0; i < Examples.Count; i++)
        {
            json.WriteStartObject();
            json.WriteNumber("index", i);
            WriteInts(json, "input_ids", Examples[i].InputIds);
            WriteInts(json, "labels", Examples[i].Labels);
            json.WriteStartArray("token_logprobs");
            foreach (float x in LogProbs[i]) json.WriteNumberValue(x);
            json.WriteEndArray();
            if (LogProbs[i].Count == 0) json.WriteNull("loss"); else json.WriteNumber("loss", -LogProbs[i].Average(x => (double)x));
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.Flush();
        writer.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static void WriteInts(Utf8JsonWriter json, string name, int[] values)
    {
        json.WriteStartArray(name);
        foreach (int v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }
}

/// <summary>
/// <c>irr score</c> as a job: the log-probability the model gives every labelled (answer) token of a data set,
/// formatted as the model was trained (IRR-SPEC "Formatting"), and the mean loss; written as JSON when
/// <see cref="OutputPath"/> is set.
/// </summary>
[Job("score", Help = "Score a data set: each record's token ids, labels and the log-probability of every answer token, and the mean loss", OutputExtension = ".json")]
public sealed record ScoreJob : IJob<ScoreResult>
{
    /// <summary>The model directory.</summary>
    [Option(OptionHelp.Model, Kind = OptionKind.Input, Hub = true, Required = true)]
    public required string Model { get; init; }

    /// <summary>A PEFT LoRA adapter merged into <see cref="Model"/> on the fly, or null.</summary>
    [Option(OptionHelp.Adapter, Kind = OptionKind.Input, Hub = true)]
    public string? Adapter { get; init; }

    /// <summary>The records (any record format of <c>docs/formats.md</c>).</summary>
    [Option("records: " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string Data { get; init; }

    /// <summary>The system prompt: none, llama2 or literal text.</summary>
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

    /// <summary>Tokens kept per record (the first N).</summary>
    [Option("keep the first N tokens of each record")]
    public int MaxLength { get; init; } = 1024;

    /// <summary>Records per forward pass.</summary>
    [Option("records per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>The JSON file to write, or null to write none (the command then prints the JSON).</summary>
    [Option("write the JSON here (default: standard output)", Name = "output", Alias = "-o", Kind = OptionKind.Output, Fingerprinted = false)]
    public string? OutputPath { get; init; }

    /// <summary>Replace the output file if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <inheritdoc/>
    public string Command => "score";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Model, Adapter, Data);

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        Validation.RequireAtLeast(Command, "batch-size", BatchSize, 1);
        Validation.RequireAtLeast(Command, "max-length", MaxLength, 1);
    }

    /// <summary>Reads and formats the records, scores them (stage "scoring", in records) and writes the JSON when asked.</summary>
    /// <exception cref="IrrException">The model or data is missing or malformed.</exception>
    public ScoreResult Run(Action<JobProgress>? progress = null)
    {
        Validate();
        if (OutputPath is not null) OutputPolicy.RequireNewFile(OutputPath, Overwrite);
        var records = TrainingRecord.Load(Data);
        var tokenizer = PretrainedTokenizer.Load(Model, Adapter).AsRawText(NoChatTemplate).WithTemplateArgs(Chat.Args);
        using var weights = CheckpointWeights.Open(Model, Adapter);
        tokenizer.RequireFits(weights.Config.VocabSize, Model);
        string? system = Text.SystemPrompt.Resolve(SystemPrompt);
        var examples = records.Select(r => ChatPrompt.Encode(tokenizer, r, system, MaxLength)).ToList();
        var stage = ProgressStage.Start(progress, "scoring", examples.Count);
        var logProbs = Scoring.TargetLogProbs(new Transformer(weights), examples.Select(e => (e.InputIds, e.Labels)).ToList(), BatchSize, (n, t) => stage.Advance(n, t));
        var result = new ScoreResult(this, examples, logProbs);
        if (OutputPath is not null) AtomicFile.WriteText(OutputPath, result.WriteJson);
        return result;
    }
}
