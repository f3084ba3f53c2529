using System.Text;

namespace Irr.Data;

/// <summary>A small RFC 4180 CSV reader: comma-separated, double-quoted fields with <c>""</c> escapes and line breaks inside quotes.</summary>
internal static class Csv
{
    /// <summary>One record and the (1-based) line it starts on.</summary>
    public readonly record struct Row(int Line, IReadOnlyList<string> Fields);

    /// <summary>The records of <paramref name="text"/>; blank lines are skipped. A leading BOM is ignored.</summary>
    /// <exception cref="IrrException">A quoted field is not closed, or text follows a closing quote.</exception>
    public static List<Row> Parse(string text, string fileName)
    {
        var rows = new List<Row>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int i = text.Length > 0 && text[0] == '\uFEFF' ? 1 : 0, line = 1, rowLine = 1;
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
            if (any) rows.Add(new Row(rowLine, fields.ToArray()));
            fields.Clear();
            any = false;
        }

        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                    else inQuotes = false;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append(c);
                }
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
                    line++;
                    rowLine = line;
                    break;
                default:
                    if (quoted) throw new IrrException($"{fileName} line {line}: text after a closing quote");
                    field.Append(c);
                    any = true;
                    break;
            }
        }
        if (inQuotes) throw new IrrException($"{fileName} line {rowLine}: a quoted field is not closed");
        EndRow();
        return rows;
    }
}
