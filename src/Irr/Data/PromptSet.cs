namespace Irr.Data;

/// <summary>One (harmful) prompt of a set.</summary>
/// <param name="Prompt">The user's request, as asked (no chat template).</param>
/// <param name="Category">The category path, e.g. "Illegal Activity/Drug" for CatQA, or null when the set has none.</param>
public sealed record PromptRecord(string Prompt, string? Category = null);

/// <summary>
/// A set of prompts read from one data file (<see cref="DataFile"/>: JSON array, JSONL, CSV, parquet or a CatQA tree): each
/// record's user message (<see cref="DataRecord.User"/>; a bare string is the prompt) and category
/// (<see cref="DataRecord.Category"/>). What <c>irr eval safety --prompts</c> and <c>irr generate --prompts</c> read.
/// </summary>
/// <param name="Name">The set's name: the file name without extension.</param>
/// <param name="File">The file as given.</param>
/// <param name="Records">The prompts in file order.</param>
public sealed partial record PromptSet(string Name, string File, IReadOnlyList<PromptRecord> Records)
{
    /// <summary>Reads a prompt set.</summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed, or a prompt is empty; the message names the file and the line or JSON path.</exception>
    public static PromptSet Load(string path) => Load(path, allowEmpty: false);

    /// <summary>Reads a prompt set; with <paramref name="allowEmpty"/> an empty prompt is kept (raw text: a base model generates from BOS alone).</summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed, or a prompt is empty; the message names the file and the line or JSON path.</exception>
    public static PromptSet Load(string path, bool allowEmpty) =>
        new(NameOf(path), path, Prompts(DataFile.Read(path), allowEmpty));

    /// <summary>
    /// The name of the set a file holds: its name without extension ("harmful" for harmful.json); for a file of a Hub data
    /// set in the cache (an <c>hf://</c> reference), the data set's name, with the split when it is not "train" and the file
    /// is one of the Hub's split shards ("XSTest" for data/train-00000-of-00001.parquet, "Salad-Data/test" for the
    /// auto-converted default/test/0000.parquet), else with the file's name ("JBB-Behaviors/harmful-behaviors").
    /// </summary>
    public static string NameOf(string path)
    {
        string stem = Path.GetFileNameWithoutExtension(path);
        if (IO.HubCache.RepoOfCachedPath(path) is not { RepoType: "dataset" } hub) return stem;
        string name = hub.RepoId[(hub.RepoId.IndexOf('/') + 1)..];
        string[] parts = hub.Path.Split('/');
        // A split in one file: SPLIT-00000-of-00001, or the auto-converted CONFIG/SPLIT/0000.parquet. A split in several
        // shards keeps each shard's name, so that two shards of one split are two sets ("XSTest/test-00001-of-00002").
        var shard = SplitShard().Match(stem);
        string? split = shard.Success && shard.Groups[2].Value == "00001" ? shard.Groups[1].Value
            : stem == "0000" && parts.Length >= 2 ? parts[^2]
            : null;
        if (split is null && stem.All(char.IsAsciiDigit) && parts.Length >= 2) return $"{name}/{parts[^2]}-{stem}";
        return split is null ? $"{name}/{stem}" : split == "train" ? name : $"{name}/{split}";
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^([A-Za-z0-9_]+)-\d{5}-of-(\d{5})$")]
    private static partial System.Text.RegularExpressions.Regex SplitShard();

    /// <summary>Reads prompts from a file's text; <paramref name="fileName"/> (with its extension) names it and picks the container.</summary>
    /// <exception cref="IrrException">The text is malformed, or a prompt is empty.</exception>
    public static List<PromptRecord> Parse(string text, string fileName) => Prompts(DataFile.Parse(text, fileName));

    private static List<PromptRecord> Prompts(IReadOnlyList<DataRecord> records, bool allowEmpty = false) => records.Select(r =>
    {
        string prompt = r.User();
        return string.IsNullOrWhiteSpace(prompt) && !allowEmpty ? throw r.Error("empty prompt") : new PromptRecord(prompt, r.Category());
    }).ToList();
}
