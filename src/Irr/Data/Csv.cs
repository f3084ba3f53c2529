using System.Text;

namespace Irr.Data;

/// <summary>A small RFC 4180 CSV reader: comma-separated, double-quoted fields with <c>""</c> escapes and line breaks inside quotes.</summary>
internal static class Csv
{
    /// <summary>One record and the (1-based) line it starts on.</summary>
    public readonly record struct Row(int Line, IReadOnlyList<string> Fields);

    /// <summary>
    /// The records of a text read line by line; blank lines are skipped. A leading BOM is ignored. A record (which may
    /// span lines inside quotes) longer than <paramref name="limit"/> bytes is refused by the line it starts on, and each
    /// record is counted against <paramref name="budget"/>.
    /// </summary>
    /// <exception cref="IrrException">A quoted field is not closed, text follows a closing quote, a line is not valid UTF-8, or a limit is exceeded.</exception>
    public static List<Row> Read(IO.Utf8Lines lines, string fileName, long limit, DataBudget budget)
    {
        var rows = new List<Row>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, rowLine = 1;
        long rowBytes = 0;
        bool inQuotes = false, quoted = false, any = false;

        void EndField()
        {
            fields.Add(field.ToString());
            field.Clear();
            quoted = false;
        }
        void EndRow()
        {
            EndField();
            if (any)
            {
                budget.Add(rowBytes, fields.Count);
                rows.Add(new Row(rowLine, fields.ToArray()));
            }
            fields.Clear();
            rowBytes = 0;
            any = false;
        }

        while (ReadLine() is { } text)
        {
            line = lines.LineNumber;
            if (!inQuotes) rowLine = line;
            if ((rowBytes += Encoding.UTF8.GetByteCount(text) + 1) > limit + 1) throw IO.Utf8Lines.RecordTooLong(fileName, rowLine, DataLimits.RecordBytesVariable, limit);
            text += "\n";
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (inQuotes)
                {
                    if (c == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                        else inQuotes = false;
                    }
                    else field.Append(c);
                    continue;
                }
                switch (c)
                {
                    case '"' when field.Length == 0 && !quoted:
                        inQuotes = quoted = any = true;
                        break;
                    case '"':
                        throw new IrrException($"{fileName} line {line}: a quote inside an unquoted field (quote the whole field and double the quote)");
                    case ',':
                        any = true;
                        EndField();
                        break;
                    case '\r':
                        break;
                    case '\n':
                        EndRow();
                        break;
                    default:
                        if (quoted) throw new IrrException($"{fileName} line {line}: text after a closing quote");
                        field.Append(c);
                        any = true;
                        break;
                }
            }
        }
        if (inQuotes) throw new IrrException($"{fileName} line {rowLine}: a quoted field is not closed");

        string? ReadLine()
        {
            lines.RecordLine = inQuotes ? rowLine : null;
            return lines.ReadLine();
        }
        EndRow();
        return rows;
    }
}
