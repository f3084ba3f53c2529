using System.Text;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.Cli;
using Irr.Tests.IO;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// "No path from input to output produces an internal error" (issue 24) for the text files a model brings: seeded
/// mutations of real tokenizer.json, tokenizer_config.json and config.json files (truncations, wrong types at every key,
/// huge and negative numbers, NaN, deep nesting, duplicate keys, random bytes) are read and, when accepted, used
/// (encode, decode, rotary tables, the expected tensors). Every outcome must be success or an <see cref="IrrException"/>
/// with a one-line message; any other exception fails the test with the seed and the mutation.
/// </summary>
public class MutationTests
{
    // What a key's value is swapped for: every JSON type, the edges of int32/int64/double, a deep nest.
    private static readonly string[] Replacements =
    [
        "null", "true", "false", "0", "-1", "1", "2147483647", "2147483648", "-2147483649", "9223372036854775808", "1e308", "-1e308",
        "1e400", "0.5", "\"\"", "\"x\"", "\"\\u0000\\n\\u001b[31m\"", "[]", "[1, \"a\", null]", "{}", "{\"type\": \"BPE\"}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ];

    private const string Sample = "Hello world!  \t 中文 😀 <s>aaaa</s> ▁x\u0000\u001b";

    private static void Use(string kind, string text)
    {
        switch (kind)
        {
            case "tokenizer.json":
                var t = Tokenizer.FromJson(text);
                var ids = t.Encode(Sample, addSpecialTokens: true);
                _ = t.Decode(ids);
                _ = t.Decode([0, 1, 2, -1, int.MaxValue, t.VocabSize], skipSpecialTokens: true);
                _ = t.VocabSize;
                break;
            case "tokenizer_config.json":
                _ = TokenizerConfig.FromJson(text);
                break;
            default:
                var c = ModelConfig.Parse(text, "config.json");
                var rope = new Irr.Model.Rope(c);
                rope.Ensure(8);
                Assert.All(rope.InverseFrequencies.ToArray(), f => Assert.True(float.IsFinite(f), $"inv_freq {f}"));
                _ = c.ExpectedTensors().Count();
                _ = c.WithVocabSize(c.VocabSize + 1);
                break;
        }
    }

    private static void Check(string kind, string text, string what)
    {
        try
        {
            using (Diagnostics.Listen(_ => { })) Use(kind, text);
        }
        catch (IrrException e)
        {
            Assert.False(e.Message.Contains('\n') && Diagnostics.Escape(e.Message).Contains('\n'), $"{what}: {e.Message}");
        }
        catch (Exception e)
        {
            Assert.Fail($"{kind}, {what}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
        }
    }

    /// <summary>Every node of the tree (arrays and vocabularies: their first three items) as a way to replace it (and, in an object, to remove it).</summary>
    private static IEnumerable<(string Path, Action<JsonNode?> Set, Action? Remove)> Slots(JsonNode node, string path = "")
    {
        if (node is JsonObject o)
            foreach (var key in o.Select(kv => kv.Key).Take(o.Count > 40 ? 3 : o.Count).ToList()) // a vocabulary: its first entries
            {
                string p = path.Length == 0 ? key : $"{path}.{key}";
                yield return (p, v => o[key] = v, () => o.Remove(key));
                if (o[key] is { } child)
                    foreach (var slot in Slots(child, p)) yield return slot;
            }
        else if (node is JsonArray a)
            for (int i = 0; i < Math.Min(3, a.Count); i++)
            {
                int index = i;
                string p = $"{path}[{i}]";
                yield return (p, v => a[index] = v, null);
                if (a[i] is { } child)
                    foreach (var slot in Slots(child, p)) yield return slot;
            }
    }

    /// <summary>Wrong types and extreme values at every key (vocabularies: their first entries), and each key removed.</summary>
    private static void EveryKeyEveryType(string kind, string json, int stride = 1)
    {
        var root = JsonNode.Parse(json)!;
        int slots = Slots(root).Count();
        Assert.True(slots > 5);
        for (int s = 0; s < slots; s++)
            foreach (string replacement in Replacements.Append("REMOVE").Where((_, i) => (i + s) % stride == 0))
            {
                var copy = root.DeepClone();
                var (path, set, remove) = Slots(copy).ElementAt(s);
                if (replacement != "REMOVE") set(JsonNode.Parse(replacement));
                else if (remove is not null) remove();
                else continue;
                Check(kind, copy.ToJsonString(), $"{path} = {replacement}");
            }
    }

    /// <summary>Random text mutations, seeded: truncation, a byte replaced, NaN or a deep nest inserted, a key duplicated.</summary>
    private static void RandomTextMutations(string kind, string json, int seed, int count)
    {
        var rng = new Random(seed);
        string[] inserts = ["NaN", "Infinity", "-Infinity", "1e400", "\"", "{", "[", "]", "}", ",", ":", "\\", "\\u", "\\ud800", "\u0000", "\u001b",
            new string('[', 300) + new string(']', 300), new string('[', 70_000)];
        for (int i = 0; i < count; i++)
        {
            int at = rng.Next(json.Length);
            string mutated = rng.Next(5) switch
            {
                0 => json[..at],
                1 => json[..at] + inserts[rng.Next(inserts.Length)] + json[(at + 1)..],
                2 => json[..at] + inserts[rng.Next(inserts.Length)] + json[at..],
                3 => DuplicateKey(json, at),
                _ => json[..at] + (char)rng.Next(0x20, 0x7f) + json[(at + 1)..],
            };
            Check(kind, mutated, $"seed {seed}, mutation {i} at {at}");
        }
    }

    // The "key": value starting at the first quote after at, written twice with the value 7 first (a duplicate key).
    private static string DuplicateKey(string json, int at)
    {
        int q = json.IndexOf("\":", at, StringComparison.Ordinal);
        if (q < 0) return json;
        int start = json.LastIndexOf('"', q - 1);
        if (start < 0) return json;
        string key = json[start..(q + 2)];
        return json[..start] + key + " 7, " + json[start..];
    }

    /// <summary>A real tokenizer.json cut to the ids below <paramref name="size"/> (and the merges among them): the real structure, small.</summary>
    private static string Shrunk(string json, int size)
    {
        var root = JsonNode.Parse(json)!.AsObject();
        var model = root["model"]!.AsObject();
        var vocab = new JsonObject(model["vocab"]!.AsObject().Where(kv => (int)kv.Value! < size).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value!.DeepClone())).ToList());
        var merges = new JsonArray();
        foreach (var m in model["merges"]!.AsArray())
        {
            var (a, b) = m is JsonArray pair ? ((string)pair[0]!, (string)pair[1]!) : ((string)m!).Split(' ') is [var x, var y] ? (x, y) : ("", "");
            if (vocab.ContainsKey(a) && vocab.ContainsKey(b) && vocab.ContainsKey(a + b)) merges.Add(m!.DeepClone());
        }
        model["vocab"] = vocab;
        model["merges"] = merges;
        return root.ToJsonString();
    }

    [Theory]
    [InlineData("tinyllama")]
    [InlineData("bytelevel")]
    public void MutatedTokenizerJsonIsReadOrRefusedNeverAnInternalError(string name) =>
        MutateTokenizer(name == "tinyllama" ? Shrunk(File.ReadAllText(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer.json")), 600) : TinyVocabularies.ByteLevel().ToJsonString());

    /// <summary>Llama-3's: byte-level, with a Split regex pre-tokenizer (cut to 600 ids).</summary>
    [SharedFixtureFact(Fixtures.Llama3Json)]
    public void MutatedLlama3TokenizerJsonIsReadOrRefusedNeverAnInternalError() =>
        MutateTokenizer(Shrunk(File.ReadAllText(Fixtures.Shared(Fixtures.Llama3Json)), 600), stride: 6, count: 40);

    private static void MutateTokenizer(string json, int stride = 1, int count = 300)
    {
        Use("tokenizer.json", json); // the unmutated file works
        EveryKeyEveryType("tokenizer.json", json, stride); // for the larger file, every stride-th replacement at each key, in turn
        RandomTextMutations("tokenizer.json", json, seed: 24, count);
    }

    [Fact]
    public void MutatedTokenizerConfigJsonIsReadOrRefusedNeverAnInternalError()
    {
        string json = File.ReadAllText(Path.Combine(Fixtures.TinyLlamaDir, "tokenizer_config.json"));
        Use("tokenizer_config.json", json);
        EveryKeyEveryType("tokenizer_config.json", json);
        RandomTextMutations("tokenizer_config.json", json, seed: 25, count: 300);
    }

    [Fact]
    public void MutatedConfigJsonIsReadOrRefusedNeverAnInternalError() => MutateConfig(TinyModels.LlamaConfig);

    [SharedFixtureTheory("configs/qwen2.5-0.5b-instruct/config.json")]
    [InlineData("configs/llama-3.2-1b-instruct/config.json")]
    [InlineData("configs/qwen2.5-0.5b-instruct/config.json")]
    public void MutatedRealConfigJsonIsReadOrRefusedNeverAnInternalError(string relative) => MutateConfig(File.ReadAllText(Fixtures.Shared(relative)));

    private static void MutateConfig(string json)
    {
        Use("config.json", json);
        EveryKeyEveryType("config.json", json);
        // keys irr reads that the file may lack, each given every type
        foreach (string key in new[] { "head_dim", "rope_scaling", "rope_parameters", "layer_types", "sliding_window", "use_sliding_window",
                     "max_window_layers", "partial_rotary_factor", "qk_norm", "torch_dtype", "dtype", "attention_bias", "mlp_bias", "model_type" })
            foreach (string replacement in Replacements)
            {
                var o = JsonNode.Parse(json)!.AsObject();
                o[key] = JsonNode.Parse(replacement);
                Check("config.json", o.ToJsonString(), $"{key} = {replacement}");
            }
        RandomTextMutations("config.json", json, seed: 26, count: 500);
    }

    /// <summary>A few of the same kinds through the command line as a user runs it, under 1 GB and 30 CPU seconds.</summary>
    [Fact]
    public void HostileFilesThroughTheProcessEndInOneLineErrors()
    {
        using var dir = new IO.TempDir();
        string model = TinyModels.Create(dir["model"]);
        var config = JsonNode.Parse(TinyModels.LlamaConfig)!.AsObject();
        config["num_hidden_layers"] = 1_000_000_000;
        File.WriteAllText(Path.Combine(model, "config.json"), config.ToJsonString());
        IrrProcess.AssertOneLineError(IrrProcess.Run(["inspect", model]), "config.json", "\"num_hidden_layers\" 1,000,000,000 exceeds the limit of 1,024", "IRR_MAX_LAYERS");

        var tokenizer = TinyVocabularies.ByteLevel();
        tokenizer["model"]!["vocab"]!["he"] = int.MaxValue;
        File.WriteAllText(dir["tokenizer.json"], tokenizer.ToJsonString());
        IrrProcess.AssertOneLineError(IrrProcess.Run(["tokenize", "--model", dir.Path, "--text", "the"]), "tokenizer.json: model.vocab.he: the token id 2,147,483,647");

        File.WriteAllText(dir["tokenizer.json"], "{\"model\": " + new string('[', 1_000_000));
        IrrProcess.AssertOneLineError(IrrProcess.Run(["tokenize", "--model", dir.Path, "--text", "the"]), "tokenizer.json: not valid JSON");
    }
}
