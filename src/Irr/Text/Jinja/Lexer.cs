using System.Globalization;
using System.Text;

namespace Irr.Text.Jinja;

internal enum TokenKind { Name, String, Integer, Float, Operator, End }

internal readonly record struct Token(TokenKind Kind, string Value, int Line)
{
    public bool Is(string op) => Kind == TokenKind.Operator && Value == op;

    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;

    public override string ToString() => Kind switch
    {
        TokenKind.End => "end of tag",
        TokenKind.String => $"string '{Value}'",
        _ => $"'{Value}'",
    };
}

/// <summary>One piece of a template: literal text, a <c>{{ … }}</c> output, or a <c>{% … %}</c> statement (its tokens).</summary>
internal abstract record TemplatePiece(int Line);

internal sealed record TextPiece(string Text) : TemplatePiece(0);

internal sealed record OutputPiece(List<Token> Tokens, int Line) : TemplatePiece(Line);

internal sealed record StatementPiece(List<Token> Tokens, int Line) : TemplatePiece(Line);

/// <summary>
/// Splits template source into pieces the way jinja2's lexer does with transformers' settings:
/// newlines normalized to \n and one trailing newline dropped (<c>keep_trailing_newline=False</c>),
/// <c>trim_blocks</c> (the first newline after a statement or comment is removed), <c>lstrip_blocks</c>
/// (spaces and tabs before a statement or comment at the start of a line are removed), and the
/// <c>-</c>/<c>+</c> whitespace controls.
/// </summary>
internal sealed class Lexer
{
    private readonly string src;
    private readonly string name;
    private readonly int[] lineStarts;

    private Lexer(string source, string name)
    {
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        src = source;
        this.name = name;
        var starts = new List<int> { 0 };
        for (int i = 0; i < src.Length; i++) if (src[i] == '\n') starts.Add(i + 1);
        lineStarts = starts.ToArray();
    }

    public static List<TemplatePiece> Tokenize(string source, string name) => new Lexer(source, name).Run();

    private int LineAt(int pos)
    {
        int i = Array.BinarySearch(lineStarts, pos);
        return (i >= 0 ? i : ~i - 1) + 1;
    }

    private IrrException Error(int pos, string message) => new($"{name} line {LineAt(pos)}: {Budget.Escape(message)}");

    /// <summary>Python's <c>str.isspace</c>: Unicode White_Space and the separators U+001C–U+001F.</summary>
    internal static bool IsSpace(char c) => c is (>= '\t' and <= '\r') or (>= '\x1c' and <= ' ') or '\x85' or '\xa0' or '\u1680'
        or (>= '\u2000' and <= '\u200a') or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000';

    private List<TemplatePiece> Run()
    {
        var pieces = new List<TemplatePiece>();
        int pos = 0;
        bool stripLeading = false, trimNewline = false;
        while (true)
        {
            int open = FindTagStart(pos);
            string text = src[pos..(open < 0 ? src.Length : open)];
            if (stripLeading) text = text.TrimStart(WhiteSpace);
            else if (trimNewline && text.StartsWith('\n')) text = text[1..];
            stripLeading = trimNewline = false;
            if (open < 0)
            {
                AddText(pieces, text);
                return pieces;
            }
            char kind = src[open + 1];
            char modifier = open + 2 < src.Length ? src[open + 2] : '\0';
            if (modifier == '-') text = text.TrimEnd(WhiteSpace);
            else if (kind != '{' && modifier != '+') text = LStripBlock(text, open);
            AddText(pieces, text);

            int inner = open + 2 + (modifier is '-' or '+' ? 1 : 0);
            if (kind == '#')
            {
                int close = src.IndexOf("#}", inner, StringComparison.Ordinal);
                if (close < 0) throw Error(open, "comment is not closed ('#}' missing)");
                char before = close > inner ? src[close - 1] : '\0';
                stripLeading = before == '-';
                trimNewline = before != '+';
                pos = close + 2;
                continue;
            }
            var (tokens, end, endModifier) = LexTag(inner, kind == '{' ? "}}" : "%}");
            stripLeading = endModifier == '-';
            if (kind == '{')
            {
                pieces.Add(new OutputPiece(tokens, LineAt(open)));
                pos = end;
                continue;
            }
            trimNewline = endModifier != '+';
            if (tokens.Count > 0 && tokens[0].IsName("raw"))
            {
                if (tokens.Count != 1) throw Error(open, "'raw' takes no arguments");
                pos = ReadRaw(pieces, end, ref stripLeading, ref trimNewline);
                continue;
            }
            pieces.Add(new StatementPiece(tokens, LineAt(open)));
            pos = end;
        }
    }

    private static readonly char[] WhiteSpace = Enumerable.Range(0, 0x3001).Select(i => (char)i).Where(IsSpace).ToArray();

    private static void AddText(List<TemplatePiece> pieces, string text)
    {
        if (text.Length > 0) pieces.Add(new TextPiece(text));
    }

    /// <summary>lstrip_blocks: removes spaces/tabs before a tag that starts its line.</summary>
    private string LStripBlock(string text, int tagStart)
    {
        int k = tagStart;
        while (k > 0 && src[k - 1] != '\n' && IsSpace(src[k - 1])) k--;
        if (k > 0 && src[k - 1] != '\n') return text;
        int n = Math.Min(tagStart - k, text.Length);
        return text[..^n];
    }

    private int FindTagStart(int from)
    {
        for (int i = src.IndexOf('{', from); i >= 0 && i + 1 < src.Length; i = src.IndexOf('{', i + 1))
            if (src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>{% raw %}…{% endraw %}: the text in between is output as is.</summary>
    private int ReadRaw(List<TemplatePiece> pieces, int from, ref bool stripLeading, ref bool trimNewline)
    {
        for (int i = src.IndexOf("{%", from, StringComparison.Ordinal); i >= 0; i = src.IndexOf("{%", i + 2, StringComparison.Ordinal))
        {
            int j = i + 2;
            char modifier = j < src.Length ? src[j] : '\0';
            if (modifier is '-' or '+') j++;
            while (j < src.Length && IsSpace(src[j])) j++;
            if (string.CompareOrdinal(src, j, "endraw", 0, 6) != 0) continue;
            var (_, end, endModifier) = LexTag(i + 2 + (modifier is '-' or '+' ? 1 : 0), "%}");
            string text = src[from..i];
            if (stripLeading) text = text.TrimStart(WhiteSpace);
            else if (trimNewline && text.StartsWith('\n')) text = text[1..];
            if (modifier == '-') text = text.TrimEnd(WhiteSpace);
            else if (modifier != '+') text = LStripBlock(text, i);
            AddText(pieces, text);
            stripLeading = endModifier == '-';
            trimNewline = endModifier != '+';
            return end;
        }
        throw Error(from, "'raw' is not closed ('{% endraw %}' missing)");
    }

    private static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", ";"];

    /// <summary>Tokens from <paramref name="pos"/> to the closing <paramref name="closer"/> at bracket depth 0.</summary>
    private (List<Token> Tokens, int End, char Modifier) LexTag(int pos, string closer)
    {
        var tokens = new List<Token>();
        int depth = 0;
        while (true)
        {
            while (pos < src.Length && IsSpace(src[pos])) pos++;
            if (pos >= src.Length) throw Error(pos, $"tag is not closed ('{closer}' missing)");
            if (depth == 0)
            {
                foreach (char m in "-+")
                    if (src[pos] == m && string.CompareOrdinal(src, pos + 1, closer, 0, 2) == 0)
                        return (tokens, pos + 3, m);
                if (string.CompareOrdinal(src, pos, closer, 0, 2) == 0) return (tokens, pos + 2, '\0');
            }
            int line = LineAt(pos);
            char c = src[pos];
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = pos;
                while (pos < src.Length && (char.IsAsciiLetterOrDigit(src[pos]) || src[pos] == '_')) pos++;
                tokens.Add(new Token(TokenKind.Name, src[start..pos], line));
            }
            else if (char.IsAsciiDigit(c))
            {
                int start = pos;
                while (pos < src.Length && (char.IsAsciiDigit(src[pos]) || src[pos] == '_')) pos++;
                bool isFloat = false;
                if (pos + 1 < src.Length && src[pos] == '.' && char.IsAsciiDigit(src[pos + 1]))
                {
                    isFloat = true;
                    pos++;
                    while (pos < src.Length && (char.IsAsciiDigit(src[pos]) || src[pos] == '_')) pos++;
                }
                if (pos < src.Length && src[pos] is 'e' or 'E')
                {
                    int save = pos++;
                    if (pos < src.Length && src[pos] is '+' or '-') pos++;
                    if (pos < src.Length && char.IsAsciiDigit(src[pos]))
                    {
                        isFloat = true;
                        while (pos < src.Length && char.IsAsciiDigit(src[pos])) pos++;
                    }
                    else pos = save;
                }
                tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, src[start..pos].Replace("_", ""), line));
            }
            else if (c is '\'' or '"') tokens.Add(new Token(TokenKind.String, ReadString(ref pos), line));
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(src, pos, o, 0, o.Length) == 0);
                if (op is null) throw Error(pos, $"unexpected character '{c}'");
                if (op is "(" or "[" or "{") depth++;
                else if (op is ")" or "]" or "}") depth = Math.Max(0, depth - 1);
                tokens.Add(new Token(TokenKind.Operator, op, line));
                pos += op.Length;
            }
        }
    }

    /// <summary>A Python string literal with its escapes (\n, \t, \\, \', \", \xNN, \uNNNN, \UNNNNNNNN, octal).</summary>
    private string ReadString(ref int pos)
    {
        char quote = src[pos];
        int start = pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= src.Length) throw Error(start, "string literal is not closed");
            char c = src[pos++];
            if (c == quote) return sb.ToString();
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }
            if (pos >= src.Length) throw Error(start, "string literal is not closed");
            char e = src[pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case 'a': sb.Append('\a'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '\n': break;
                case 'x': sb.Append((char)Hex(ref pos, 2, start)); break;
                case 'u': sb.Append((char)Hex(ref pos, 4, start)); break;
                case 'U': sb.Append(char.ConvertFromUtf32(Hex(ref pos, 8, start))); break;
                case >= '0' and <= '7':
                {
                    int v = e - '0';
                    for (int k = 0; k < 2 && pos < src.Length && src[pos] is >= '0' and <= '7'; k++) v = v * 8 + (src[pos++] - '0');
                    sb.Append((char)v);
                    break;
                }
                default: sb.Append('\\').Append(e); break;
            }
        }
    }

    private int Hex(ref int pos, int digits, int start)
    {
        if (pos + digits > src.Length || !int.TryParse(src.AsSpan(pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v))
            throw Error(start, "bad escape in string literal");
        pos += digits;
        return v;
    }
}
