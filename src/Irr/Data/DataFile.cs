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
/// <item><c>.parquet</c>: each row is a record, the JSON object of its columns (<see cref="ParquetData"/>).</item>
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

    /// <summary>
    /// Reads the records of a data file, in file order. The file is read as a stream, one record at a time, within
    /// <see cref="DataLimits"/>: a record longer than <see cref="DataLimits.RecordBytes"/>, more records than
    /// <see cref="DataLimits.Records"/> or more bytes of them than <see cref="DataLimits.DataBytes"/> are refused, and so is
    /// text that is not valid UTF-8, by its line.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="paragraphs">Read a <c>.txt</c> file as paragraphs (texts for perplexity); otherwise .txt is read as JSON or JSONL.</param>
    /// <exception cref="IrrException">The file is missing, malformed, beyond a limit or holds no records; the message names the file and the line or JSON path.</exception>
    public static IReadOnlyList<DataRecord> Read(string path, bool paragraphs = false)
    {
        if (Directory.Exists(path)) throw new IrrException($"{path}: is a directory, not a data file");
        if (!File.Exists(path)) throw new IrrException($"{Path.GetFileName(path)}: file not found ({path})");
        using var stream = Utf8Lines.OpenRead(path);
        if (!stream.CanSeek) throw new IrrException($"{Path.GetFileName(path)}: not a regular file ({path})");
        return Read(stream, Path.GetFileName(path), paragraphs);
    }

    /// <summary>Reads records from a file's text; <paramref name="fileName"/> (with its extension) picks the container and names the file in errors.</summary>
    /// <exception cref="IrrException">The text is malformed, beyond a limit or holds no records; the message names the line or JSON path.</exception>
    public static IReadOnlyList<DataRecord> Parse(string text, string fileName, bool paragraphs = false)
    {
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text), writable: false);
        return Read(stream, fileName, paragraphs);
    }

    /// <summary>The one error for a data set without records: <c>data.jsonl: no records (an empty data set)</c>.</summary>
    /// <param name="fileName">The file's name.</param>
    public static string EmptyMessage(string fileName) => $"{fileName}: no records (an empty data set)";

    // The records of a seekable stream, read from its start.
    private static IReadOnlyList<DataRecord> Read(Stream stream, string fileName, bool paragraphs)
    {
        var records = ReadAny(stream, fileName, paragraphs);
        return records.Count > 0 ? records : throw new IrrException(EmptyMessage(fileName));
    }

    private static List<DataRecord> ReadAny(Stream stream, string fileName, bool paragraphs)
    {
        string extension = Path.GetExtension(fileName).ToLowerInvariant();
        var budget = new DataBudget(fileName);
        long limit = DataLimits.RecordBytes;
        if (extension == ".parquet") return ParquetData.Read(stream, fileName, budget);
        if (extension == ".csv") return ReadCsv(Lines(stream, fileName, limit), fileName, budget);
        if (extension == ".txt" && paragraphs) return Paragraphs(Lines(stream, fileName, limit), fileName, budget);
        char first = FirstCharacter(stream);
        stream.Position = 0;
        bool jsonl = first == '{' && extension != ".jsonl" && LooksLikeJsonl(Lines(stream, fileName, limit));
        stream.Position = 0;
        if (first == '[') return JsonArray(new JsonStream(stream, fileName, limit), fileName, budget);
        if (extension != ".jsonl" && first == '{' && !jsonl)
        {
            if (RootKeys(new JsonStream(stream, fileName, limit)).Any(k => RecordFields.Contains(k, StringComparer.OrdinalIgnoreCase)))
            {
                stream.Position = 0;
                var json = new JsonStream(stream, fileName, limit);
                var root = json.Value(out _);
                json.Expect(JsonTokenType.None);
                CheckStrings(root, root.GetRawText(), fileName);
                return [DataRecord.FromJson(new JsonCursor(root, fileName, ""))];
            }
            stream.Position = 0;
            var records = new List<DataRecord>();
            var tree = new JsonStream(stream, fileName, limit);
            tree.Expect(JsonTokenType.StartObject);
            Tree(tree, fileName, "", null, records, budget);
            tree.Expect(JsonTokenType.None);
            return records;
        }
        return JsonLines(Lines(stream, fileName, limit), fileName, budget);
    }

    private static Utf8Lines Lines(Stream stream, string fileName, long limit) => new(stream, fileName, limit, DataLimits.RecordBytesVariable, own: false);

    // The first byte after a BOM and JSON's whitespace (space, tab, CR, LF), as a char ('\0' for none), read in blocks, not
    // lines: a minified JSON array may be one long line. (Not byte by byte: the file is opened unbuffered, and 100 MB of
    // leading whitespace took 100 M reads, 35 s.) The stream's position is left anywhere.
    internal static char FirstCharacter(Stream stream)
    {
        var block = new byte[64 * 1024];
        int n = stream.ReadAtLeast(block, 3, throwOnEndOfStream: false);
        int i = n >= 3 && block.AsSpan(0, 3).SequenceEqual("\uFEFF"u8) ? 3 : 0;
        while (n > 0)
        {
            int at = block.AsSpan(i, n - i).IndexOfAnyExcept(" \t\r\n"u8);
            if (at >= 0) return (char)block[i + at];
            n = stream.Read(block, 0, block.Length);
            i = 0;
        }
        return '\0';
    }

    // JSONL: a first line that is a complete JSON value by itself, and more lines after it. A first line longer than the
    // record limit, or not UTF-8, is no JSONL line: the file is then read as one JSON document, which says what is wrong.
    private static bool LooksLikeJsonl(Utf8Lines lines)
    {
        try
        {
            string? first;
            do first = lines.ReadLine();
            while (first is not null && string.IsNullOrWhiteSpace(first));
            if (first is null) return false;
            using (JsonDocument.Parse(first)) { }
        }
        catch (Exception e) when (e is JsonException or IrrException)
        {
            return false;
        }
        try
        {
            string? more;
            do more = lines.ReadLine();
            while (more is not null && string.IsNullOrWhiteSpace(more));
            return more is not null;
        }
        catch (IrrException)
        {
            return true; // a line beyond the limit, or not UTF-8, after a JSON line: JSONL, which says so by its line
        }
    }

    // The keys of the root object, each value skipped token by token.
    private static List<string> RootKeys(JsonStream json)
    {
        json.Expect(JsonTokenType.StartObject);
        var keys = new List<string>();
        while (json.Next(out string? key) == JsonTokenType.PropertyName)
        {
            keys.Add(key!);
            json.Skip();
        }
        return keys;
    }

    private static List<DataRecord> JsonArray(JsonStream json, string fileName, DataBudget budget)
    {
        json.Expect(JsonTokenType.StartArray);
        var records = new List<DataRecord>();
        for (int i = 0; json.Peek() != JsonTokenType.EndArray; i++)
            records.Add(DataRecord.FromJson(Item(json, fileName, $"[{i}]", budget)));
        json.Expect(JsonTokenType.EndArray);
        json.Expect(JsonTokenType.None);
        return records;
    }

    // One record of a JSON array, counted against the file's budget.
    private static JsonCursor Item(JsonStream json, string fileName, string path, DataBudget budget)
    {
        var element = json.Value(out long line);
        budget.Add(json.LastValueBytes, json.LastValueValues);
        CheckStrings(element, element.GetRawText(), $"{fileName} line {line}");
        return new JsonCursor(element, fileName, path);
    }

    // A string escape of an unpaired surrogate ("\ud800") is valid JSON but no text (Python keeps it in a str that no
    // tokenizer can encode; .NET cannot read it): refused by the record's line.
    private static void CheckStrings(JsonElement element, string raw, string where)
    {
        if (!raw.Contains("\\ud", StringComparison.OrdinalIgnoreCase)) return;
        static void Walk(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var p in e.EnumerateObject())
                    {
                        _ = p.Name;
                        Walk(p.Value);
                    }
                    break;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray()) Walk(item);
                    break;
                case JsonValueKind.String:
                    _ = e.GetString();
                    break;
            }
        }
        try { Walk(element); }
        catch (InvalidOperationException)
        {
            throw new IrrException($"{where}: {JsonStream.UnpairedSurrogate}");
        }
    }

    private static List<DataRecord> JsonLines(Utf8Lines lines, string fileName, DataBudget budget)
    {
        var records = new List<DataRecord>();
        while (lines.ReadLine() is { } line)
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{fileName} line {lines.LineNumber}";
            budget.Add(line.Length, DataLimits.Values(line));
            using var doc = JsonCursor.ParseLine(line, where);
            CheckStrings(doc.RootElement, line, where);
            records.Add(DataRecord.FromJson(JsonCursor.Root(doc, where).Detached()));
        }
        return records;
    }

    // The CatQA layout: objects are category levels, arrays hold the records; read after the object's "{".
    private static void Tree(JsonStream json, string fileName, string path, string? category, List<DataRecord> records, DataBudget budget)
    {
        while (json.Next(out string? key) == JsonTokenType.PropertyName)
        {
            string child = path.Length == 0 ? key! : $"{path}.{key}";
            string childCategory = category is null ? key! : $"{category}/{key}";
            switch (json.Peek())
            {
                case JsonTokenType.StartObject:
                    json.Next(out _);
                    Tree(json, fileName, child, childCategory, records, budget);
                    break;
                case JsonTokenType.StartArray:
                    json.Next(out _);
                    for (int i = 0; json.Peek() != JsonTokenType.EndArray; i++)
                        records.Add(DataRecord.FromJson(Item(json, fileName, $"{child}[{i}]", budget), childCategory));
                    json.Next(out _);
                    break;
                default:
                    var value = new JsonCursor(json.Value(out long line), fileName, child);
                    CheckStrings(value.Element, value.Element.GetRawText(), $"{fileName} line {line}");
                    throw value.Error($"expected an object of categories or an array of prompts, found {value.Describe()}");
            }
        }
    }

    private static List<DataRecord> ReadCsv(Utf8Lines lines, string fileName, DataBudget budget)
    {
        var rows = Csv.Read(lines, fileName, DataLimits.RecordBytes, budget);
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

    // Paragraphs separated by a blank line ("\n\n"; a "\r" before a "\n" is dropped), each trimmed of its newlines;
    // whitespace-only ones are skipped.
    private static List<DataRecord> Paragraphs(Utf8Lines lines, string fileName, DataBudget budget)
    {
        var records = new List<DataRecord>();
        long limit = DataLimits.RecordBytes;
        var paragraph = new System.Text.StringBuilder();
        int start = 0;
        long bytes = 0;
        void End()
        {
            if (paragraph.Length > 0 && !string.IsNullOrWhiteSpace(paragraph.ToString()))
            {
                budget.Add(bytes);
                records.Add(DataRecord.FromText(paragraph.ToString(), $"{fileName} line {start}"));
            }
            paragraph.Clear();
            bytes = 0;
        }
        while (ReadLine() is { } line)
        {
            string text = line.EndsWith('\r') ? line[..^1] : line;
            if (text.Length == 0)
            {
                End();
                continue;
            }
            if (paragraph.Length == 0) start = lines.LineNumber;
            else paragraph.Append('\n');
            paragraph.Append(text);
            if ((bytes += System.Text.Encoding.UTF8.GetByteCount(text) + 1) > limit + 1) throw Utf8Lines.RecordTooLong(fileName, start, DataLimits.RecordBytesVariable, limit);
        }
        End();
        return records;

        string? ReadLine()
        {
            lines.RecordLine = paragraph.Length > 0 ? start : null;
            return lines.ReadLine();
        }
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
