using Irr.IO;

namespace Irr.Text;

/// <summary>
/// The items of a record file: a JSON array, or JSONL (one JSON value per line; blank lines skipped).
/// Each item is handed over as a <see cref="JsonCursor"/> that names where it is (<c>data.json: [3]</c>
/// or <c>data.jsonl line 4</c>), so a malformed record is reported with its place.
/// </summary>
internal static class JsonRecords
{
    /// <summary>Maps every item of <paramref name="text"/> with <paramref name="map"/>; <paramref name="fileName"/> names the file in errors.</summary>
    /// <exception cref="IrrException">The text is not valid JSON or JSONL, or <paramref name="map"/> rejects an item.</exception>
    public static List<T> Parse<T>(string text, string fileName, Func<JsonCursor, T> map)
    {
        var records = new List<T>();
        if (text.TrimStart().StartsWith('['))
        {
            using var doc = JsonCursor.Parse(text, fileName);
            foreach (var item in JsonCursor.Root(doc, fileName).Items()) records.Add(map(item));
            return records;
        }
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            string where = $"{fileName} line {i + 1}";
            using var doc = JsonCursor.Parse(lines[i], where);
            records.Add(map(JsonCursor.Root(doc, where)));
        }
        return records;
    }
}
