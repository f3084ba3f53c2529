using System.Text.Json.Serialization;
using Irr.IO;

namespace Irr.Eval;

/// <summary>Results for one category path of a prompt set (e.g. "Illegal Activity/Drug" for CatQA).</summary>
public sealed record CategorySafety(string Category, SafetyCounts Counts)
{
    /// <summary>In a benign set, how often the model refused the category's prompts (e.g. XSTest's <c>homonyms</c>); null in a harmful set.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RefusalCounts? Refusal { get; init; }
}

/// <summary>Results for one prompt set (one --prompts file).</summary>
/// <param name="Name">The set's name: the file name without extension, e.g. "catqa_english".</param>
/// <param name="File">The prompt file as given.</param>
/// <param name="Counts">Counts over the whole set.</param>
/// <param name="Categories">Per category path, in first-seen order; empty when the set has no categories.</param>
public sealed record SetSafety(string Name, string File, SafetyCounts Counts, IReadOnlyList<CategorySafety> Categories)
{
    /// <summary>The attack the set's requests were sent under (the set is named <c>SET@ATTACK</c>); null for the plain requests.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Attack { get; init; }

    /// <summary>How the responses were generated (what a rerun compares before reusing them); null for judged response files.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SetGeneration? Generation { get; init; }

    /// <summary>How many of the set's responses are incoherent (<see cref="Incoherence"/>): empty, repetitive, another script; null in a file written before.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IncoherenceCounts? Incoherence { get; init; }

    /// <summary>
    /// Whether the set is benign (safe requests: <c>--benign-prompts</c>, or a label column marking them safe, as XSTest's
    /// <c>label</c>): its figure is <see cref="Refusal"/>, the over-refusal rate, and it is left out of the run's harmful counts.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Benign { get; init; }

    /// <summary>For a benign set, how often the model refused (<see cref="RefusalCounts"/>); null for a harmful set.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RefusalCounts? Refusal { get; init; }

    /// <summary>The Hub data set the prompt file came from (an <c>hf://</c> file read from the cache), or null.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IO.HubCache.Source? FileHub => IO.HubCache.RepoOfCachedPath(File);
}

/// <summary>How a set's responses were generated: what must be unchanged for a rerun to reuse them (<see cref="SafetyEvaluation.Reusable"/>).</summary>
/// <param name="Model">The SHA-256 of the model directory's config, weights and tokenizer files (<see cref="Jobs.ContentHash.OfModel"/>).</param>
/// <param name="Adapter">The same of the adapter directory, or null.</param>
/// <param name="SystemPrompt">The system prompt, or null.</param>
/// <param name="MaxNewTokens">Most tokens generated per prompt.</param>
public sealed record SetGeneration(string? Model, string? Adapter, string? SystemPrompt, int MaxNewTokens)
{
    /// <summary>The serving engine that generated the responses (<see cref="EngineOptions.Name"/>: <c>API:SERVED-MODEL</c>); null for local generation.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Engine { get; init; }

    /// <summary>The chat template's extra variables the prompts were rendered with (<c>--template-arg</c> items, values as JSON); null when none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? TemplateArgs { get; init; }
}

/// <summary>The responses to one attack over every set of a run.</summary>
/// <param name="Name">The attack's name (<c>none</c> for the plain requests).</param>
/// <param name="Counts">Counts over all sets under the attack.</param>
/// <param name="AttackSuccessRate">The share of requests answered harmfully under the attack: harmful / total (unknown verdicts count as not harmful).</param>
public sealed record AttackSafety(string Name, SafetyCounts Counts, double AttackSuccessRate)
{
    /// <summary>The summary of an attack's counts.</summary>
    public static AttackSafety Of(string name, SafetyCounts counts) => new(name, counts, counts.Total == 0 ? 0 : (double)counts.Harmful / counts.Total);
}

/// <summary>
/// <c>safety.json</c> of an evaluation run directory, written by <c>irr eval safety</c> (and the demo),
/// read by <c>irr report</c>. All rates are fractions in [0, 1].
/// </summary>
/// <param name="Model">The model directory evaluated.</param>
/// <param name="Adapter">The LoRA adapter merged into it, or null.</param>
/// <param name="Judge">The judge's <see cref="IJudge.Name"/>.</param>
/// <param name="Sets">One entry per prompt set, in the order given.</param>
/// <param name="Overall">Counts over all plain sets (no attack); over all sets when every set is under an attack.</param>
public sealed record SafetyRun(string Model, string? Adapter, string Judge, IReadOnlyList<SetSafety> Sets, SafetyCounts Overall)
{
    /// <summary>Per attack, in first-seen order, when some set is under an attack (<c>none</c> included when present); null otherwise.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<AttackSafety>? Attacks { get; init; }

    /// <summary>The incoherence counts over the responses <see cref="Overall"/> counts; null in a file written before.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IncoherenceCounts? Incoherence { get; init; }

    /// <summary>The over-refusal figure: <see cref="RefusalCounts"/> summed over the benign sets (plain requests); null when the run has none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RefusalCounts? OverRefusal { get; init; }

    /// <summary>
    /// Where the refusal decisions of <see cref="OverRefusal"/> come from: the judge's name when it gives a refusal verdict
    /// (the keyword judge, an HTTP judge of the WildGuard protocol), else <c>keyword (JUDGE has no refusal verdict)</c>: the
    /// default refusal markers; null when the run has no benign set.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RefusalJudge { get; init; }

    /// <summary>The Hub repo and commit of <see cref="Model"/> when it was read from the Hugging Face cache, or null.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IO.HubCache.Source? ModelHub => IO.HubCache.RepoOfCachedPath(Model);

    /// <summary>The same of <see cref="Adapter"/>, or null.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IO.HubCache.Source? AdapterHub => IO.HubCache.RepoOfCachedPath(Adapter);

    /// <summary>The file name inside a run directory.</summary>
    public const string FileName = "safety.json";

    /// <summary>Writes this run to <c>DIR/safety.json</c> (atomically).</summary>
    public void Save(string directory) => JsonFiles.Save(Path.Combine(directory, FileName), this);

    /// <summary>Reads <c>DIR/safety.json</c>, or null when the directory has none.</summary>
    /// <exception cref="IrrException">The file exists but is not a valid safety.json.</exception>
    public static SafetyRun? Load(string directory) => JsonFiles.Load<SafetyRun>(Path.Combine(directory, FileName));
}

