using System.Text.Json;
using Irr.IO;

namespace Irr.Text;

/// <summary>
/// One example of a data set (Fisher data, calibration data): the user's content and the answer, read
/// per IRR-SPEC "Formatting" from an Alpaca record <c>{instruction, input, output}</c> or a
/// <c>{prompt, response}</c> record.
/// </summary>
/// <param name="User">The user message: <c>instruction</c>, or <c>instruction + "\n" + input</c> when input is not empty.</param>
/// <param name="Answer">The answer (<c>output</c> or <c>response</c>).</param>
public sealed record TrainingRecord(string User, string Answer)
{
    /// <summary>
    /// Reads a data file: a JSON array of records, or JSONL (one record per line; blank lines skipped).
    /// </summary>
    /// <exception cref="IrrException">The file is missing or a record is malformed; the message names the line or index.</exception>
    public static IReadOnlyList<TrainingRecord> Load(string path)
    {
        if (!File.Exists(path)) throw new IrrException($"{Path.GetFileName(path)}: file not found ({path})");
        return Parse(File.ReadAllText(path), Path.GetFileName(path));
    }

    /// <summary>Reads records from the text of a JSON array or JSONL file; <paramref name="fileName"/> names it in errors.</summary>
    /// <exception cref="IrrException">A record is malformed; the message names the line or index.</exception>
    public static IReadOnlyList<TrainingRecord> Parse(string text, string fileName)
    {
        return JsonRecords.Parse(text, fileName, FromJson);
    }

    /// <summary>One record. A missing or null <c>input</c> is empty; an object <c>prompt</c> {instruction, input} becomes <c>instruction\ninput\n</c>.</summary>
    internal static TrainingRecord FromJson(JsonCursor json)
    {
        if (json.Kind != JsonValueKind.Object) throw json.Error($"expected a record object, found {json.Describe()}");
        if (json.Get("instruction") is not null)
        {
            string instruction = json.Required("instruction").AsString();
            string input = json.String("input") ?? "";
            return new TrainingRecord(input.Length == 0 ? instruction : instruction + "\n" + input, json.Required("output").AsString());
        }
        if (json.Get("prompt") is { } prompt)
        {
            string user = prompt.Kind == JsonValueKind.Object
                ? prompt.Required("instruction").AsString() + "\n" + (prompt.String("input") ?? "") + "\n"
                : prompt.AsString();
            return new TrainingRecord(user, json.Required("response").AsString());
        }
        throw json.Error("expected a record with \"instruction\"/\"output\" or \"prompt\"/\"response\"");
    }
}
