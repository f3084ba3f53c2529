using System.Text;
using Irr.IO;

namespace Irr.Text;

/// <summary>
/// A <c>decoder</c> of <c>tokenizer.json</c>: turns the list of token strings back into text, as a
/// chain of steps over the list (HF <c>Decoder::decode_chain</c>); the results are concatenated.
/// </summary>
internal abstract class Decoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    public static Decoder? FromJson(JsonCursor json)
    {
        if (json.IsNull) return null;
        string type = json.Required("type").AsString();
        return type switch
        {
            "Sequence" => new SequenceDecoder(json.Required("decoders").Items().Select(d => FromJson(d)).OfType<Decoder>().ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Replace" => ReplaceDecoder.Read(json),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(StripContent(json), json.Int("start", 0), json.Int("stop", 0)),
            "Metaspace" => new MetaspaceDecoder(MetaspacePreTokenizer.ParseReplacementAndScheme(json)),
            _ => throw json.Required("type").Error($"unsupported decoder type '{type}' (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)"),
        };
    }

    private static char StripContent(JsonCursor json)
    {
        var c = json.Required("content");
        string s = c.AsString();
        return s.Length == 1 ? s[0] : throw c.Error("expected a single character");
    }
}

internal sealed class SequenceDecoder(Decoder[] steps) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var step in steps) tokens = step.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary><c>ByteLevel</c>: every token's characters back to bytes (a token with a character outside the alphabet keeps its own UTF-8), decoded leniently.</summary>
internal sealed class ByteLevelDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            bool all = true;
            foreach (char c in token) all &= ByteLevelAlphabet.ByteOf(c) >= 0;
            if (all) foreach (char c in token) bytes.Add((byte)ByteLevelAlphabet.ByteOf(c));
            else bytes.AddRange(Encoding.UTF8.GetBytes(token));
        }
        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }
}

/// <summary><c>Replace</c> in each token (literal patterns only, as HF decoders use).</summary>
internal sealed class ReplaceDecoder(string pattern, string content) : Decoder
{
    public static ReplaceDecoder Read(JsonCursor json)
    {
        var p = json.Required("pattern");
        var (literal, _) = ReplaceNormalizer.ParsePattern(p);
        return literal is null
            ? throw p.Error("a Replace decoder with a Regex pattern is not supported")
            : new ReplaceDecoder(literal, json.Required("content").AsString());
    }

    public override List<string> DecodeChain(List<string> tokens) =>
        tokens.Select(t => pattern.Length == 0 ? t : t.Replace(pattern, content, StringComparison.Ordinal)).ToList();
}

/// <summary>
/// <c>ByteFallback</c>: runs of <c>&lt;0xNN&gt;</c> tokens become the text of their bytes, or one U+FFFD per
/// byte when the run is not valid UTF-8.
/// </summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    private static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte b))
            {
                pending.Add(b);
                continue;
            }
            Flush(pending, result);
            result.Add(token);
        }
        Flush(pending, result);
        return result;
    }

    private static void Flush(List<byte> pending, List<string> result)
    {
        if (pending.Count == 0) return;
        try
        {
            result.Add(Strict.GetString(pending.ToArray()));
        }
        catch (DecoderFallbackException)
        {
            for (int i = 0; i < pending.Count; i++) result.Add("\uFFFD");
        }
        pending.Clear();
    }
}

/// <summary><c>Fuse</c>: all tokens into one string.</summary>
internal sealed class FuseDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary><c>Strip</c>: up to <c>start</c> leading and <c>stop</c> trailing copies of a character off each token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select(Strip).ToList();

    private string Strip(string token)
    {
        int from = 0, to = token.Length;
        while (from < start && from < token.Length && token[from] == content) from++;
        for (int i = 0; i < stop && to > from && token[to - 1] == content; i++) to--;
        return token[from..to];
    }
}

/// <summary><c>Metaspace</c>: the replacement becomes a space, except in the first token, where it is dropped (unless the scheme is <c>never</c>).</summary>
internal sealed class MetaspaceDecoder((char Replacement, PrependScheme Scheme) config) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            bool drop = i == 0 && config.Scheme != PrependScheme.Never;
            result.Add(drop ? tokens[i].Replace(config.Replacement.ToString(), "", StringComparison.Ordinal) : tokens[i].Replace(config.Replacement, ' '));
        }
        return result;
    }
}
