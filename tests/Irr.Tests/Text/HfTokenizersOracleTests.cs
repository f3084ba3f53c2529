using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Irr.Text;
using Xunit.Abstractions;
using Oracle = Tokenizers.DotNet.Tokenizer;

namespace Irr.Tests.Text;

/// <summary>
/// Differential check against Hugging Face's own Rust <c>tokenizers</c> (0.22, through the test-only wrapper
/// Tokenizers.DotNet 1.4.1): for every real tokenizer in <c>../shared/fixtures/tokenizers/</c>, 10,000 seeded random
/// strings must give the same ids and the same decodes.
/// </summary>
/// <remarks>
/// The wrapper exposes only <c>encode(text, add_special_tokens=True)</c> and <c>decode(ids, skip_special_tokens=True)</c>
/// (its <c>lib.rs</c>: <c>encode_fast(text, true)</c>, <c>decode(ids, true)</c>). The other two settings are reached
/// through modified copies of the same <c>tokenizer.json</c>, which the Rust library reads itself:
/// <list type="bullet">
/// <item><c>post_processor: null</c>: <c>add_special_tokens</c> only reaches the post-processor in <c>tokenizers</c>
/// (<c>TokenizerImpl::post_process</c>), so this copy's encode is <c>encode(text, add_special_tokens=False)</c>;</item>
/// <item>every added token <c>"special": false</c>: skipping only drops tokens of the special set
/// (<c>AddedVocabulary::is_special_token</c>), so this copy's decode is <c>decode(ids, skip_special_tokens=False)</c>.</item>
/// </list>
/// </remarks>
public class HfTokenizersOracleTests(ITestOutputHelper output)
{
    private const int Strings = 10_000;

    [SharedFixtureFact("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.json")]
    public void TinyLlamaAgreesWithHfTokenizers() => Compare("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.json", seed: 1);

    [SharedFixtureFact("tokenizers/mistral-7b-instruct-v0.3/tokenizer.json")]
    public void MistralAgreesWithHfTokenizers() => Compare("tokenizers/mistral-7b-instruct-v0.3/tokenizer.json", seed: 2);

    [SharedFixtureFact("tokenizers/phi-3-mini-4k-instruct/tokenizer.json")]
    public void Phi3AgreesWithHfTokenizers() => Compare("tokenizers/phi-3-mini-4k-instruct/tokenizer.json", seed: 3);

    [SharedFixtureFact("tokenizers/llama-3/tokenizer.json")]
    public void Llama3AgreesWithHfTokenizers() => Compare("tokenizers/llama-3/tokenizer.json", seed: 4);

    [SharedFixtureFact("tokenizers/qwen3-0.6b/tokenizer.json.gz")]
    public void Qwen3AgreesWithHfTokenizers() => Compare("tokenizers/qwen3-0.6b/tokenizer.json.gz", seed: 5);

    // Gemma's 262,144-token file takes seconds to load on each side: its 10,000 strings are two tests of 5,000.
    [SharedFixtureFact("tokenizers/gemma-3-1b-it/tokenizer.json.gz")]
    public void Gemma3AgreesWithHfTokenizers() => Compare("tokenizers/gemma-3-1b-it/tokenizer.json.gz", seed: 6, Strings / 2);

    [SharedFixtureFact("tokenizers/gemma-3-1b-it/tokenizer.json.gz")]
    public void Gemma3AgreesWithHfTokenizersOnMoreStrings() => Compare("tokenizers/gemma-3-1b-it/tokenizer.json.gz", seed: 16, Strings / 2);

    private void Compare(string fixture, int seed, int strings = Strings)
    {
        string json = ReadJson(Fixtures.Shared(fixture));
        var ours = Tokenizer.FromJson(json, fixture);
        using var dir = new TempDir();
        var root = JsonNode.Parse(json)!.AsObject();
        string asIs = dir.Write("as-is.json", json);
        root["post_processor"] = null;
        string noPostProcessor = dir.Write("no-post-processor.json", root.ToJsonString());
        foreach (var token in root["added_tokens"]!.AsArray()) token!["special"] = false;
        string noSpecial = dir.Write("no-special.json", root.ToJsonString());
        root = null;

        using var withSpecials = new Oracle(asIs);
        using var plain = new Oracle(noPostProcessor);
        using var keepSpecials = new Oracle(noSpecial);

        var generator = new TextGenerator(new Random(seed), ours);
        var mismatches = new List<string>();
        for (int n = 0; n < strings && mismatches.Count < 20; n++)
        {
            string text = generator.Next();
            int[] expected = ToInts(withSpecials.Encode(text));
            int[] got = ours.Encode(text, addSpecialTokens: true);
            if (!expected.SequenceEqual(got)) { mismatches.Add($"encode(add_special_tokens=True) {Escape(text)}: HF [{string.Join(",", expected)}], irr [{string.Join(",", got)}]"); continue; }
            expected = ToInts(plain.Encode(text));
            got = ours.Encode(text);
            if (!expected.SequenceEqual(got)) { mismatches.Add($"encode(add_special_tokens=False) {Escape(text)}: HF [{string.Join(",", expected)}], irr [{string.Join(",", got)}]"); continue; }
            uint[] ids = withSpecials.Encode(text);
            string hfSkip = withSpecials.Decode(ids), irrSkip = ours.Decode(ToInts(ids), skipSpecialTokens: true);
            if (hfSkip != irrSkip) { mismatches.Add($"decode(skip_special_tokens=True) of {Escape(text)} [{string.Join(",", ids)}]: HF {Escape(hfSkip)}, irr {Escape(irrSkip)}"); continue; }
            string hfKeep = keepSpecials.Decode(ids), irrKeep = ours.Decode(ToInts(ids));
            if (hfKeep != irrKeep) mismatches.Add($"decode(skip_special_tokens=False) of {Escape(text)} [{string.Join(",", ids)}]: HF {Escape(hfKeep)}, irr {Escape(irrKeep)}");
        }
        foreach (var m in mismatches) output.WriteLine(m);
        Assert.True(mismatches.Count == 0, $"{fixture}: {mismatches.Count} mismatch(es) with HF tokenizers, first: {mismatches.FirstOrDefault()}");
    }

    private static int[] ToInts(uint[] ids) => Array.ConvertAll(ids, i => checked((int)i));

    private static string ReadJson(string path)
    {
        if (!path.EndsWith(".gz", StringComparison.Ordinal)) return File.ReadAllText(path);
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new StreamReader(gz, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>A string as a C# literal with every non-printable-ASCII character escaped.</summary>
    internal static string Escape(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var rune in s.EnumerateRunes())
            sb.Append(rune.Value is >= 0x20 and < 0x7F && rune.Value != '"' && rune.Value != '\\' ? ((char)rune.Value).ToString()
                : rune.Value <= 0xFFFF ? $"\\u{rune.Value:X4}" : $"\\U{rune.Value:X8}");
        return sb.Append('"').ToString();
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("irr-oracle-").FullName;

        public string Write(string name, string text)
        {
            string path = System.IO.Path.Combine(Path, name);
            File.WriteAllText(path, text, new UTF8Encoding(false));
            return path;
        }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}

/// <summary>
/// Seeded random text for tokenizer comparisons: every string is a run of pieces drawn from the kinds that break
/// tokenizers (whitespace runs of every kind, digits, contractions, punctuation, CJK, RTL, combining marks, emoji with
/// ZWJ, skin tones and flags, rare planes, unassigned and noncharacter code points, controls, the tokenizer's own added
/// and special tokens with and without spaces around them, and pieces of its vocabulary). Only valid strings (no lone
/// surrogates): the Rust side holds UTF-8. Also long runs (past the word cache), the SentencePiece and byte-level marker
/// characters (U+2581, U+0120) and byte-fallback token names (<c>&lt;0x0A&gt;</c>) written as text.
/// </summary>
internal sealed class TextGenerator(Random rng, Tokenizer tokenizer)
{
    private static readonly string[] Words = ["the", "The", "THE", "hello", "world", "Hello", "naïve", "café", "über", "straße", "ﬁne", "a", "I", "x", "token", "izer", "ing", "un", "re", "what's", "it'S"];
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "n't", "’s", "''", "'"];
    private static readonly string[] Spaces = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", " \n", "\n ", " \t ", "\u00A0", "\u00A0\u00A0", "\u3000", "\u2028", "\u2029", "\u200B", "\u2009", "\u202F", "\u0085", "\u000B", "\u000C", "\uFEFF", "        ", "                "];
    private static readonly string[] Punctuation = [".", ",", "!", "?", "...", "…", "—", "–", "-", "--", "(", ")", "[", "]", "{", "}", "<", ">", "<<", "</", "/>", "\"", "“", "”", "«", "»", "'", "`", "```", "#", "##", "@", "$", "%", "^", "&", "*", "_", "__", "=", "==", "+", "|", "\\", "/", "//", ":", ";", "::", "->", "=>", "。", "、", "！", "？", "「", "」", "¿", "¡", "§", "©", "®", "™", "°", "±", "×", "÷", "€", "£", "¥", "₹", "\u2581", "\u2581\u2581", "\u0120", "\u010A", "<0x0A>", "<unk>"];
    private static readonly string[] LongRunUnits = [" ", "a", "0", "\n", "\t", "\r\n", "=", "ab", "\u2581", "\u0120", "\u00A0", "中", "😀", "e\u0301", "<s>"];
    private static readonly string[] Emoji = ["😀", "👍", "👍🏽", "❤️", "❤", "🇫🇷", "🇯🇵", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🧑‍🤝‍🧑", "🤷‍♂️", "✨", "🔥", "🦀", "🫠", "#️⃣", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☺", "☺️", "⚡"];
    private static readonly (int From, int To)[] Blocks =
    [
        (0x4E00, 0x9FFF), (0x3040, 0x309F), (0x30A0, 0x30FF), (0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x0600, 0x06FF),
        (0x0590, 0x05FF), (0x0900, 0x097F), (0x0E00, 0x0E7F), (0x0400, 0x04FF), (0x0370, 0x03FF), (0x00C0, 0x024F),
        (0x1E00, 0x1EFF), (0x0530, 0x058F), (0x10A0, 0x10FF), (0x1780, 0x17FF), (0x0F00, 0x0FFF), (0x2200, 0x22FF),
        (0x2500, 0x257F), (0xFF01, 0xFF5E), (0xE000, 0xF8FF), (0x10000, 0x1007F), (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF),
        (0x20000, 0x2A6DF), (0x13000, 0x1342F), (0xE0000, 0xE007F), (0xF0000, 0xF00FF), (0x10FF00, 0x10FFFF),
        (0x0080, 0x009F), (0x0000, 0x001F), (0x2000, 0x206F), (0xFE00, 0xFE0F), (0x0378, 0x0379), (0x0870, 0x089F),
        (0xFDD0, 0xFDEF), (0xFFF0, 0xFFFF), (0x2FFF0, 0x2FFFF), (0x1F000, 0x1F02F), (0xA640, 0xA69F),
    ];

    private readonly string[] added = tokenizer.AddedTokens.Select(t => t.Content).ToArray();

    /// <summary>The next string: 0 to about 40 pieces.</summary>
    public string Next()
    {
        var sb = new StringBuilder();
        int pieces = rng.Next(8) == 0 ? rng.Next(0, 3) : rng.Next(1, 40);
        for (int i = 0; i < pieces; i++) AppendPiece(sb);
        return sb.ToString();
    }

    private void AppendPiece(StringBuilder sb)
    {
        switch (rng.Next(15))
        {
            case 0: case 1: sb.Append(Words[rng.Next(Words.Length)]); break;
            case 2: sb.Append(Spaces[rng.Next(Spaces.Length)]); break;
            case 3: for (int n = rng.Next(1, 14); n > 0; n--) sb.Append((char)('0' + rng.Next(10))); break;
            case 4: sb.Append(Contractions[rng.Next(Contractions.Length)]); break;
            case 5: sb.Append(Punctuation[rng.Next(Punctuation.Length)]); break;
            case 6: sb.Append(Emoji[rng.Next(Emoji.Length)]); break;
            case 7: case 8: AppendFromBlock(sb, rng.Next(1, 6)); break;
            case 9: // a letter with combining marks
                sb.Append((char)('a' + rng.Next(26)));
                for (int n = rng.Next(1, 4); n > 0; n--) sb.Append((char)rng.Next(0x0300, 0x0370));
                break;
            case 10: // an added or special token, with or without spaces around it (lstrip/rstrip/single_word)
                if (added.Length == 0) goto case 0;
                if (rng.Next(2) == 0) sb.Append(' ');
                sb.Append(added[rng.Next(added.Length)]);
                if (rng.Next(2) == 0) sb.Append(rng.Next(3) == 0 ? "\n" : " ");
                break;
            case 11: // a piece of the vocabulary, as text
                int id = rng.Next(tokenizer.VocabSize);
                try { sb.Append(tokenizer.Decode([id])); } catch (IrrException) { }
                break;
            case 13: // now and then, a long run (past the word cache's 100 characters): one character or word repeated
                if (rng.Next(4) != 0) goto default;
                string unit = LongRunUnits[rng.Next(LongRunUnits.Length)];
                for (int n = rng.Next(20, 200); n > 0; n--) sb.Append(unit);
                break;
            case 12: sb.Append(rng.Next(2) == 0 ? "<" : "[").Append(Words[rng.Next(Words.Length)]).Append(rng.Next(2) == 0 ? ">" : "|>"); break;
            default: sb.Append(char.ConvertFromUtf32(rng.Next(0x21, 0x7F))); break;
        }
    }

    private void AppendFromBlock(StringBuilder sb, int count)
    {
        var (from, to) = Blocks[rng.Next(Blocks.Length)];
        for (int i = 0; i < count; i++)
        {
            int cp = rng.Next(from, to + 1);
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            sb.Append(char.ConvertFromUtf32(cp));
        }
    }
}
