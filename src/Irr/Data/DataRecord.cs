using System.Globalization;
using System.Text.Json;
using Irr.IO;

namespace Irr.Data;

/// <summary>
/// One record of a data file (<see cref="DataFile"/>): a JSON value (an array item, a JSONL line, a leaf of a CatQA
/// tree), a CSV row, or a paragraph of a .txt file. It knows its place, which every error about it names
/// (<c>data.jsonl line 4: …</c>, <c>data.json: [3].prompt: …</c>, <c>catqa.json: Illegal Activity.Drug[2]: …</c>,
/// <c>data.csv line 7: goal: …</c>), and it holds the field rules every command shares: what the user message,
/// the answer, the text, the category and the set of a record are.
/// </summary>
public sealed class DataRecord
{
    /// <summary>The fields that hold the user message, in the order they are looked for.</summary>
    public static IReadOnlyList<string> UserFields { get; } = ["prompt", "instruction", "question", "goal", "behavior"];

    /// <summary>The fields that hold the answer, in the order they are looked for (<c>answer</c> only where <see cref="Answer"/> is asked for it).</summary>
    public static IReadOnlyList<string> AnswerFields { get; } = ["output", "response", "answer"];

    private readonly JsonCursor? json;
    private readonly CsvHeader? header;
    private readonly IReadOnlyList<string>? cells;
    private readonly string? paragraph;
    private readonly string? treeCategory;

    private DataRecord(string where, JsonCursor? json = null, CsvHeader? header = null, IReadOnlyList<string>? cells = null, string? paragraph = null, string? treeCategory = null)
    {
        Where = where;
        this.json = json;
        this.header = header;
        this.cells = cells;
        this.paragraph = paragraph;
        this.treeCategory = treeCategory;
    }

    internal static DataRecord FromJson(JsonCursor item, string? treeCategory = null) => new(item.Where, json: item, treeCategory: treeCategory);

    internal static DataRecord FromCsv(CsvHeader header, Csv.Row row) => new($"{header.File} line {row.Line}", header: header, cells: row.Fields);

    internal static DataRecord FromText(string text, string where) => new(where, paragraph: text);

    /// <summary>Where the record is, for messages: <c>data.jsonl line 4</c>, <c>data.json: [3]</c>, <c>data.csv line 7</c>.</summary>
    public string Where { get; }

    /// <summary>An error about this record: <c>"{Where}: {problem}"</c>.</summary>
    public IrrException Error(string problem) => new($"{Where}: {problem}");

    // A bare string: a JSON string or a paragraph.
    private string? Bare => paragraph ?? (json is { Kind: JsonValueKind.String } j ? j.AsString() : null);

    private bool IsObject => header is not null || json is { Kind: JsonValueKind.Object };

    private string Describe() => json?.Describe() ?? (paragraph is not null ? "a paragraph of text" : "a CSV row");

    /// <summary>
    /// The user message: a bare string as it is; else <c>prompt</c> (a string, or an object {instruction, input}, which
    /// becomes <c>instruction + "\n" + input + "\n"</c>, IRR-SPEC "Details"); else <c>instruction</c>, followed by
    /// <c>"\n" + input</c> when input is not empty (IRR-SPEC "Formatting"); else <c>question</c>, <c>goal</c> or
    /// <c>behavior</c>. A missing or null field is skipped; a missing or null <c>input</c> is empty.
    /// </summary>
    /// <exception cref="IrrException">The record has none of these fields, or one is not a string.</exception>
    public string User()
    {
        if (Bare is { } text) return text;
        if (!IsObject) throw Error($"expected a string or an object with {Listed(UserFields)}, found {Describe()}");
        if (Get("prompt") is { } prompt)
        {
            if (prompt.Json is not { Kind: JsonValueKind.Object } inner) return prompt.AsString("a string or an object {instruction, input}");
            return inner.Required("instruction").AsString() + "\n" + (inner.String("input") ?? "") + "\n";
        }
        if (Get("instruction") is { } instruction)
        {
            string user = instruction.AsString();
            string input = String("input") ?? "";
            return input.Length == 0 ? user : user + "\n" + input;
        }
        foreach (string name in UserFields.Skip(2))
            if (Get(name) is { } field) return field.AsString();
        throw Missing(UserFields);
    }

    /// <summary>The answer: <c>output</c>, else <c>response</c>, else (when <paramref name="orAnswer"/>, for task data) <c>answer</c>.</summary>
    /// <exception cref="IrrException">The record is not an object or has none of these fields, or the field is not a string.</exception>
    public string Answer(bool orAnswer = false)
    {
        IReadOnlyList<string> names = orAnswer ? AnswerFields : [.. AnswerFields.Take(2)];
        if (!IsObject) throw Error($"expected an object with {Listed(names)}, found {Describe()}");
        foreach (string name in names)
            if (Get(name) is { } field) return field.AsString();
        throw Missing(names);
    }

    /// <summary>
    /// Whether the record is language-modeling data (TRL's <c>{"text"}</c> format): an object with <c>text</c> and none of
    /// the user or answer fields.
    /// </summary>
    public bool IsTextOnly => IsObject && Get("text") is not null && UserFields.Concat(AnswerFields).All(f => Get(f) is null);

    /// <summary>A text to score: a bare string as it is, else the <c>text</c> field.</summary>
    /// <exception cref="IrrException">The record is neither a string nor an object with <c>text</c>.</exception>
    public string Text()
    {
        if (Bare is { } text) return text;
        if (!IsObject) throw Error($"expected a string or an object with \"text\", found {Describe()}");
        return Required("text");
    }

    /// <summary>
    /// The category path: the CatQA tree's keys joined by "/", followed by the record's own <c>category</c> (or
    /// HarmBench's <c>SemanticCategory</c>), trimmed; null when there is none.
    /// </summary>
    public string? Category()
    {
        string? own = IsObject ? String("category") ?? String("SemanticCategory") : null;
        own = string.IsNullOrWhiteSpace(own) ? null : own.Trim();
        return (treeCategory, own) switch
        {
            (null, _) => own,
            (_, null) => treeCategory,
            _ => $"{treeCategory}/{own}",
        };
    }

    /// <summary>The prompt set the record belongs to (<c>set</c>), or null.</summary>
    public string? Set() => IsObject && String("set") is { } set && !string.IsNullOrWhiteSpace(set) ? set : null;

    /// <summary>An optional string field: null when the record has no such field (or it is JSON null).</summary>
    /// <exception cref="IrrException">The field is not a string.</exception>
    public string? String(string name) => Get(name)?.AsString();

    /// <summary>A string field the record must have.</summary>
    /// <exception cref="IrrException">The field is missing or not a string.</exception>
    public string Required(string name) => (Get(name) ?? throw Missing([name])).AsString();

    /// <summary>An optional integer field: null when the record has no such field (or it is JSON null).</summary>
    /// <exception cref="IrrException">The field is not an integer.</exception>
    public int? Int(string name) => Get(name) is not { } field ? null
        : field.Json is { } j ? j.AsInt()
        : int.TryParse(field.Cell, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) ? value
        : throw field.Error($"expected an integer, found \"{field.Cell}\"");

    /// <summary>A field of a JSON record as JSON (a list, a number …), or null when absent, JSON null, or the record is not JSON.</summary>
    internal JsonCursor? Json(string name) => Get(name)?.Json;

    private IrrException Missing(IReadOnlyList<string> names) => header is not null
        ? new IrrException($"{header.File} line {header.Line}: no {Listed(names)} column in the header ({string.Join(", ", header.Columns)})")
        : Error($"missing {Listed(names)}");

    private static string Listed(IReadOnlyList<string> names) =>
        names.Count == 1 ? $"\"{names[0]}\"" : string.Join(", ", names.Take(names.Count - 1).Select(n => $"\"{n}\"")) + $" or \"{names[^1]}\"";

    // A field of an object record: present and not JSON null; for a CSV row, a column of the header.
    private Field? Get(string name)
    {
        if (json is { Kind: JsonValueKind.Object } j) return j.GetNonNull(name) is { } c ? new Field(c.Where, c, null) : null;
        if (header is null) return null;
        int i = header.IndexOf(name);
        return i < 0 ? null : new Field($"{Where}: {header.Columns[i].Trim()}", null, cells![i]);
    }

    private readonly record struct Field(string Where, JsonCursor? Json, string? Cell)
    {
        public IrrException Error(string problem) => new($"{Where}: {problem}");

        public string AsString(string expected = "a string") => Json is not { } j ? Cell!
            : j.Kind == JsonValueKind.String ? j.AsString()
            : throw Error($"expected {expected}, found {j.Describe()}");
    }
}
