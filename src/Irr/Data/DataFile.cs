using System.Text.Json;
using Irr.IO;

namespace Irr.Data;

/// <summary>
/// The one reader of irr's data files: Fisher and calibration data, training data, prompt sets, task data,
/// responses to judge and perplexity texts (docs/formats.md, "Data files"). A file is a list of
/// <see cref="DataRecord"/>s, each of which names its place for errors; the field rules (what the user message,
/// the answer, the category are) are the record's. Containers, chosen by the extension and the first character:
/// <list type="bullet">
/// <item><c>.csv</c>: RFC 4180 CSV with a header row; each row is a record whose fields are the columns (matched case-insensitively).
/// A CSV of one column whose first line is a sentence rather than a column name (HEx-PHI) is one prompt a line, with a warning.</item>
/// <item><c>.txt</c>, when the caller reads texts (<c>irr eval ppl</c>): one record per paragraph, paragraphs separated by a blank line.</item>
/// <item>a JSON array (the text starts with <c>[</c>): each item is a record.</item>
/// <item>JSONL (the <c>.jsonl</c> extension, or a first line that is a complete JSON value followed by more lines): one record a line, blank lines skipped.</item>
/// <item>one JSON object: the CatQA tree <c>{category: {subcategory: [questions]}}</c> (any depth; the keys form the
/// category path, joined by "/"), or, when it has a record's field (<c>prompt</c>, <c>instruction</c>, <c>messages</c> …, in any case), one record.</item>
/// </list>
/// A data set without records (an empty file, only blank lines, a CSV header alone, <c>[]</c>) is refused here, for every
/// command alike, with <see cref="EmptyMessage"/>.
/// </summary>
public static class DataFile
{
    // A single JSON object holding one of these is a record, not a CatQA tree.
    private static readonly string[] RecordFields = ["prompt", "instruction", "question", "goal", "behavior", "output", "response", "answer", "text",
        "messages", "conversations", "completion", "turns"];

    /// <summary>Reads the records of a data file, in file order.</summary>
    /// <param name="path">The file.</param>
    /// <param name="paragraphs">Read a <c>.txt</c> file as paragraphs (texts for perplexity); otherwise .txt is read as JSON or JSONL.</param>
    /// <exception cref="IrrException">The file is missing, malformed or holds no records; the message names the file and the line or JSON path.</exception>
    public static IReadOnlyList<DataRecord> Read(string path, bool paragraphs = false)
    {
        if (!File.Exists(path)) throw new IrrException($"{Path.GetFileName(path)}: file not found ({path})");
        return Parse(IO.InputFile.ReadAllText(path), Path.GetFileName(path), paragraphs);
    }

    /// <summary>Reads records from a file's text; <paramref name="fileName"/> (with its extension) picks the container and names the file in errors.</summary>
    /// <exception cref="IrrException">The text is malformed or holds no records; the message names the line or JSON path.</exception>
    public static IReadOnlyList<DataRecord> Parse(string text, string fileName, bool paragraphs = false)
    {
        var records = ParseAny(text, fileName, paragraphs);
        return records.Count > 0 ? records : throw new IrrException(EmptyMessage(fileName));
    }

    /// <summary>The one error for a data set without records: <c>data.jsonl: no records (an empty data set)</c>.</summary>
    /// <param name="fileName">The file's name.</param>
    public static string EmptyMessage(string fileName) => $"{fileName}: no records (an empty data set)";

    private static IReadOnlyList<DataRecord> ParseAny(string text, string fileName, bool paragraphs)
    {
        string extension = Path.GetExtension(fileName).ToLowerInvariant();
        if (extension == ".csv") return ParseCsv(text, fileName);
        if (text.StartsWith('\uFEFF')) text = text[1..];
        if (extension == ".txt" && paragraphs) return Paragraphs(text, fileName);
        string start = text.TrimStart();
        if (start.StartsWith('['))
        {
            using var doc = JsonCursor.Parse(text, fileName);
            return JsonCursor.Root(doc, fileName).Detached().Items().Select(item => DataRecord.FromJson(item)).ToList();
        }
        if (extension != ".jsonl" && start.StartsWith('{') && !LooksLikeJsonl(start))
        {
            using var doc = JsonCursor.Parse(text, fileName);
            var root = JsonCursor.Root(doc, fileName).Detached();
            if (root.Properties().Any(p => RecordFields.Contains(p.Key, StringComparer.OrdinalIgnoreCase))) return [DataRecord.FromJson(root)];
            var records = new List<DataRecord>();
            Tree(root, null, records);
            return records;
        }
        return JsonLines(text, fileName);
    }

    private static List<DataRecord> JsonLines(string text, string fileName)
    {
        var records = new List<DataRecord>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            string where = $"{fileName} line {i + 1}";
            using var doc = JsonCursor.Parse(lines[i], where);
            records.Add(DataRecord.FromJson(JsonCursor.Root(doc, where).Detached()));
        }
        return records;
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

    // The CatQA layout: objects are category levels, arrays hold the records.
    private static void Tree(JsonCursor node, string? category, List<DataRecord> records)
    {
        switch (node.Kind)
        {
            case JsonValueKind.Object:
                foreach (var (key, value) in node.Properties()) Tree(value, category is null ? key : $"{category}/{key}", records);
                break;
            case JsonValueKind.Array:
                foreach (var item in node.Items()) records.Add(DataRecord.FromJson(item, category));
                break;
            default:
                throw node.Error($"expected an object of categories or an array of prompts, found {node.Describe()}");
        }
    }

    private static List<DataRecord> ParseCsv(string text, string fileName)
    {
        var rows = Csv.Parse(text, fileName);
        if (rows.Count == 0) return [];
        if (IsHeaderless(rows))
        {
            // HEx-PHI (LLM-Tuning-Safety/HEx-PHI, category_N.csv): one prompt a line, quoted when it holds a comma, no header.
            Diagnostics.Warn($"{fileName}: one column without a header (HEx-PHI's layout): every line is a prompt, the first included");
            return rows.Select(r => DataRecord.FromText(r.Fields[0], $"{fileName} line {r.Line}")).ToList();
        }
        var header = new CsvHeader(fileName, rows[0].Line, rows[0].Fields);
        var records = new List<DataRecord>();
        foreach (var row in rows.Skip(1))
        {
            if (row.Fields.Count != header.Columns.Count)
                throw new IrrException($"{fileName} line {row.Line}: {row.Fields.Count} fields, but the header has {header.Columns.Count}");
            records.Add(DataRecord.FromCsv(header, row));
        }
        return records;
    }

    // A CSV without a header: every row one field, and the first row no column name but a sentence (it has a space and
    // names none of the fields a record is read by).
    private static bool IsHeaderless(List<Csv.Row> rows) =>
        rows.All(r => r.Fields.Count == 1) && rows[0].Fields[0].Trim() is var first && first.Contains(' ')
        && !RecordFields.Concat(["category", "semanticcategory", "contextstring", "input", "context"]).Contains(first, StringComparer.OrdinalIgnoreCase);

    // Paragraphs separated by a blank line ("\n\n"), each trimmed of its newlines; whitespace-only ones are skipped.
    private static List<DataRecord> Paragraphs(string text, string fileName)
    {
        var records = new List<DataRecord>();
        int line = 1;
        foreach (string part in text.Replace("\r\n", "\n").Split("\n\n"))
        {
            string paragraph = part.Trim('\n');
            if (!string.IsNullOrWhiteSpace(paragraph))
                records.Add(DataRecord.FromText(paragraph, $"{fileName} line {line + part.Length - part.TrimStart('\n').Length}"));
            line += part.Count(c => c == '\n') + 2;
        }
        return records;
    }
}

/// <summary>The header row of a CSV file: the columns in order, and where the header is for errors.</summary>
internal sealed record CsvHeader(string File, int Line, IReadOnlyList<string> Columns)
{
    /// <summary>The index of a column, matched case-insensitively and ignoring surrounding spaces, or -1.</summary>
    public int IndexOf(string name)
    {
        for (int i = 0; i < Columns.Count; i++)
            if (Columns[i].Trim().Equals(name, StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }
}
