using Irr.IO;

namespace Irr.Eval;

/// <summary>Results for one category path of a prompt set (e.g. "Illegal Activity/Drug" for CatQA).</summary>
public sealed record CategorySafety(string Category, SafetyCounts Counts);

/// <summary>Results for one prompt set (one --prompts file).</summary>
/// <param name="Name">The set's name: the file name without extension, e.g. "catqa_english".</param>
/// <param name="File">The prompt file as given.</param>
/// <param name="Counts">Counts over the whole set.</param>
/// <param name="Categories">Per category path, in first-seen order; empty when the set has no categories.</param>
public sealed record SetSafety(string Name, string File, SafetyCounts Counts, IReadOnlyList<CategorySafety> Categories);

/// <summary>
/// <c>safety.json</c> of an evaluation run directory, written by <c>irr eval safety</c> (and the demo),
/// read by <c>irr report</c>. All rates are fractions in [0, 1].
/// </summary>
/// <param name="Model">The model directory evaluated.</param>
/// <param name="Adapter">The LoRA adapter merged into it, or null.</param>
/// <param name="Judge">The judge's <see cref="IJudge.Name"/>.</param>
/// <param name="Sets">One entry per prompt set, in the order given.</param>
/// <param name="Overall">Counts over all sets.</param>
public sealed record SafetyRun(string Model, string? Adapter, string Judge, IReadOnlyList<SetSafety> Sets, SafetyCounts Overall)
{
    /// <summary>The file name inside a run directory.</summary>
    public const string FileName = "safety.json";

    /// <summary>Writes this run to <c>DIR/safety.json</c> (atomically).</summary>
    public void Save(string directory) => JsonFiles.Save(Path.Combine(directory, FileName), this);

    /// <summary>Reads <c>DIR/safety.json</c>, or null when the directory has none.</summary>
    /// <exception cref="IrrException">The file exists but is not a valid safety.json.</exception>
    public static SafetyRun? Load(string directory) => JsonFiles.Load<SafetyRun>(Path.Combine(directory, FileName));
}

