using System.Text.Json;
using Irr.Text;
using Irr.IO;

namespace Irr.Eval;

/// <summary>One harmful prompt of a set.</summary>
/// <param name="Prompt">The user's request, as asked (no chat template).</param>
/// <param name="Category">The category path, e.g. "Illegal Activity/Drug" for CatQA, or null when the set has none.</param>
public sealed record PromptRecord(string Prompt, string? Category = null);

/// <summary>
/// A set of (harmful) prompts read from one file. Accepted layouts:
/// <list type="bullet">
/// <item>a JSON array of strings, or of objects with <c>prompt</c>, <c>instruction</c> (+ optional <c>input</c>),
/// <c>question</c> or <c>goal</c>, and an optional <c>category</c>;</item>
/// <item>the CatQA layout <c>{category: {subcategory: [questions]}}</c> (any depth; the keys form the category path, joined by "/");</item>
/// <item>JSONL, one string or object (as above) per line;</item>
/// <item>CSV (<c>.csv</c>) with a header row and a <c>goal</c>, <c>prompt</c>, <c>behavior</c> or <c>question</c> column
/// (AdvBench, HarmBench), and optionally <c>category</c> or <c>SemanticCategory</c>.</item>
/// </list>
/// </summary>
/// <param name="Name">The set's name: the file name without extension.</param>
/// <param name="File">The file as given.</param>
/// <param name="Records">The prompts in file order.</param>
public sealed record PromptSet(string Name, string File, IReadOnlyList<PromptRecord> Records)
{
    private static readonly string[] PromptKeys = ["prompt", "instruction", "question", "goal"];
    private static readonly string[] CsvPromptColumns = ["goal", "prompt", "behavior", "question"];
    private static readonly string[] CsvCategoryColumns = ["category", "semanticcategory"];

    /// <summary>Reads a prompt set; the format follows from the extension (.csv, .jsonl) and the first character.</summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed; the message names the file and the line or JSON path.</exception>
    public static PromptSet Load(string path)
    {
        string name = System.IO.Path.GetFileName(path);
        if (!System.IO.File.Exists(path)) throw new IrrException($"{name}: file not found ({path})");
        var records = Parse(System.IO.File.ReadAllText(path), name);
        if (records.Count == 0) throw new IrrException($"{name}: no prompts ({path})");
        return new PromptSet(System.IO.Path.GetFileNameWithoutExtension(path), path, records);
    }

    /// <summary>Reads prompts from a file's text; <paramref name="fileName"/> (with its extension) names it and picks the format.</summary>
    /// <exception cref="IrrException">The text is malformed.</exception>
    public static List<PromptRecord> Parse(string text, string fileName)
    {
        string extension = System.IO.Path.GetExtension(fileName).ToLowerInvariant();
        if (extension == ".csv") return ParseCsv(text, fileName);
        string trimmed = text.TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        if (extension != ".jsonl" && trimmed.StartsWith('{') && !LooksLikeJsonl(trimmed))
        {
            using var doc = JsonCursor.Parse(trimmed, fileName);
            var records = new List<PromptRecord>();
            Tree(JsonCursor.Root(doc, fileName), null, records);
            return records;
        }
        return JsonRecords.Parse(trimmed, fileName, item => Record(item, null));
    }

    // JSONL when the first line is a complete JSON value by itself and more lines follow.
    private static bool LooksLikeJsonl(string text)
    {
        int newline = text.IndexOf('\n');
        if (newline < 0 || string.IsNullOrWhiteSpace(text[(newline + 1)..])) return false;
        try
        {
            using var _ = JsonDocument.Parse(text[..newline]);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    // The CatQA layout: objects are category levels, arrays hold the prompts.
    private static void Tree(JsonCursor node, string? category, List<PromptRecord> records)
    {
        switch (node.Kind)
        {
            case JsonValueKind.Object:
                foreach (var (key, value) in node.Properties()) Tree(value, category is null ? key : $"{category}/{key}", records);
                break;
            case JsonValueKind.Array:
                foreach (var item in node.Items()) records.Add(Record(item, category));
                break;
            default:
                throw node.Error($"expected an object of categories or an array of prompts, found {node.Describe()}");
        }
    }

    private static PromptRecord Record(JsonCursor item, string? category)
    {
        if (item.Kind == JsonValueKind.String) return new PromptRecord(NonEmpty(item.AsString(), item), category);
        if (item.Kind != JsonValueKind.Object)
            throw item.Error($"expected a prompt string or an object with \"prompt\", \"instruction\", \"question\" or \"goal\", found {item.Describe()}");
        string key = PromptKeys.FirstOrDefault(k => item.GetNonNull(k) is not null)
            ?? throw item.Error("expected \"prompt\", \"instruction\", \"question\" or \"goal\"");
        string prompt = item.Required(key).AsString();
        if (key == "instruction" && item.String("input") is { Length: > 0 } input) prompt += "\n" + input;
        string? own = item.GetNonNull("category") is { } c ? c.AsString() : null;
        string? path = (category, own) switch
        {
            (null, _) => own,
            (_, null) => category,
            _ => $"{category}/{own}",
        };
        return new PromptRecord(NonEmpty(prompt, item), string.IsNullOrWhiteSpace(path) ? null : path);
    }

    private static string NonEmpty(string prompt, JsonCursor where) =>
        string.IsNullOrWhiteSpace(prompt) ? throw where.Error("empty prompt") : prompt;

    private static List<PromptRecord> ParseCsv(string text, string fileName)
    {
        var rows = Csv.Parse(text, fileName);
        if (rows.Count == 0) throw new IrrException($"{fileName}: empty CSV file (expected a header row with a \"goal\" or \"prompt\" column)");
        var header = rows[0].Fields.Select(h => h.Trim().ToLowerInvariant()).ToList();
        int promptColumn = CsvPromptColumns.Select(c => header.IndexOf(c)).FirstOrDefault(i => i >= 0, -1);
        if (promptColumn < 0)
            throw new IrrException($"{fileName} line {rows[0].Line}: no \"goal\", \"prompt\", \"behavior\" or \"question\" column in the header ({string.Join(", ", rows[0].Fields)})");
        int categoryColumn = CsvCategoryColumns.Select(c => header.IndexOf(c)).FirstOrDefault(i => i >= 0, -1);
        var records = new List<PromptRecord>();
        foreach (var row in rows.Skip(1))
        {
            if (row.Fields.Count != header.Count)
                throw new IrrException($"{fileName} line {row.Line}: {row.Fields.Count} fields, but the header has {header.Count}");
            string prompt = row.Fields[promptColumn];
            if (string.IsNullOrWhiteSpace(prompt)) throw new IrrException($"{fileName} line {row.Line}: empty prompt in column \"{rows[0].Fields[promptColumn]}\"");
            string? category = categoryColumn >= 0 && !string.IsNullOrWhiteSpace(row.Fields[categoryColumn]) ? row.Fields[categoryColumn].Trim() : null;
            records.Add(new PromptRecord(prompt, category));
        }
        return records;
    }
}
