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
    /// <summary>
    /// Whether the set is benign: safe requests (some looking unsafe, as XSTest's), whose figure is the refusal rate
    /// (over-refusal) rather than the harmful rate. <c>irr eval safety --benign-prompts</c>, or the <c>safe</c> rows of a
    /// label column (<see cref="LoadSets"/>).
    /// </summary>
    public bool Benign { get; init; }

    /// <summary>The column that marks rows safe or unsafe when no other is named: <c>label</c>, as XSTest has it.</summary>
    public const string DefaultLabelColumn = "label";

    /// <summary>The suffix of the set of a labelled file's safe rows: <c>NAME/safe</c>.</summary>
    public const string SafeSuffix = "/safe";

    /// <summary>The suffix of the set of a labelled file's unsafe rows: <c>NAME/unsafe</c>.</summary>
    public const string UnsafeSuffix = "/unsafe";

    /// <summary>
    /// Reads the sets of a prompt file: the file as one set, benign when <paramref name="benign"/> (it was given as
    /// benign prompts), unless its records carry a label column, whose rows it splits into two sets: <c>NAME/unsafe</c>
    /// (harmful) and <c>NAME/safe</c> (benign), each in file order, an empty one left out. The label column is
    /// <paramref name="labelColumn"/> when given (every record must have it, with a value below), else <c>label</c> when
    /// every record has one of the values below (XSTest's <c>label</c>; a <c>label</c> column with other values is not a
    /// safety label and is ignored). Values, case-insensitive: <c>safe</c> or <c>benign</c>, <c>unsafe</c> or <c>harmful</c>.
    /// </summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed, a prompt is empty, or a record lacks the named label column or has another value; the message names the file and line.</exception>
    public static IReadOnlyList<PromptSet> LoadSets(string path, bool benign = false, string? labelColumn = null)
    {
        var records = DataFile.Read(path);
        var prompts = Prompts(records);
        string name = NameOf(path);
        string column = labelColumn ?? DefaultLabelColumn;
        var labels = labelColumn is not null ? records.Select(r => LabelOf(r, column, required: true)!.Value).ToList()
            : records.Select(r => LabelOf(r, column, required: false)).ToList() is var auto && auto.All(l => l is not null) ? auto.Select(l => l!.Value).ToList()
            : null;
        if (labels is null) return [new PromptSet(name, path, prompts) { Benign = benign }];
        var sets = new List<PromptSet>();
        var unsafeRows = prompts.Where((_, i) => !labels[i]).ToList();
        var safeRows = prompts.Where((_, i) => labels[i]).ToList();
        if (unsafeRows.Count > 0) sets.Add(new PromptSet(name + UnsafeSuffix, path, unsafeRows));
        if (safeRows.Count > 0) sets.Add(new PromptSet(name + SafeSuffix, path, safeRows) { Benign = true });
        return sets;
    }

    /// <summary>
    /// A record's safety label in <paramref name="column"/>: true for <c>safe</c>/<c>benign</c>, false for
    /// <c>unsafe</c>/<c>harmful</c> (case-insensitive, trimmed); null when the record has no such field or, unless
    /// <paramref name="required"/>, another value.
    /// </summary>
    /// <exception cref="IrrException"><paramref name="required"/> and the field is missing or has another value.</exception>
    public static bool? LabelOf(DataRecord record, string column, bool required)
    {
        string? value;
        try
        {
            value = required ? record.Required(column) : record.String(column);
        }
        catch (IrrException) when (!required)
        {
            return null; // a label that is not a string (a number, a list) is no safety label
        }
        return value?.Trim().ToLowerInvariant() switch
        {
            "safe" or "benign" => true,
            "unsafe" or "harmful" => false,
            _ when required => throw record.Error($"{column} must be safe or unsafe (or benign, harmful), not \"{value}\""),
            _ => null,
        };
    }

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
