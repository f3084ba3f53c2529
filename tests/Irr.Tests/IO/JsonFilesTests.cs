using System.Text;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.Cli;

namespace Irr.Tests.IO;

/// <summary>
/// The one JSON reader of irr's input files (config.json, tokenizer.json, tokenizer_config.json, adapter_config.json,
/// generation_config.json, indexes): a key given twice takes its last value at its first place, as Python's
/// <c>json.loads</c> builds a dict (<c>json.loads('{"a": 1, "b": 3, "a": 2}')</c> is <c>{'a': 2, 'b': 3}</c>), with a
/// warning; nesting, size and syntax problems are one-line errors naming the file.
/// </summary>
public class JsonFilesTests
{
    private static (T Value, List<string> Warnings) Listening<T>(Func<T> read)
    {
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add)) return (read(), warnings);
    }

    [Fact]
    public void BytesThatAreNotUtf8AreRefusedByLineAndColumnAsPythonRefusesThem()
    {
        // Python: open(p, encoding="utf-8").read() raises UnicodeDecodeError at the 0xff byte (position 19 of line 1 here,
        // column 20 counted from 1); transformers reads config.json so. Before, the byte became U+FFFD ("lla\ufffdma").
        using var dir = new TempDir();
        File.WriteAllBytes(dir["config.json"], [.. "{\"model_type\": \"lla"u8, 0xFF, .. "ma\"}"u8]);
        Assert.Equal($"{dir["config.json"]} line 1: not valid UTF-8 (byte 0xff at column 20)", Assert.Throws<IrrException>(() => JsonFiles.ReadText(dir["config.json"])).Message);
        File.WriteAllBytes(dir["t.json"], [.. "{\n  \"a\": \""u8, 0xC3, 0x28, .. "\"\n}"u8]); // a lead byte without its continuation
        Assert.Equal($"{dir["t.json"]} line 2: not valid UTF-8 (byte 0xc3 at column 9)", Assert.Throws<IrrException>(() => JsonFiles.ReadText(dir["t.json"])).Message);
        File.WriteAllBytes(dir["ok.json"], [0xEF, 0xBB, 0xBF, .. "{\"a\": \"\u00e9\u00e9\"}"u8]);
        Assert.Equal("{\"a\": \"\u00e9\u00e9\"}", JsonFiles.ReadText(dir["ok.json"]));
    }

    [Fact]
    public void ADuplicateKeyTakesItsLastValueAtItsFirstPlaceAsPythonsJson()
    {
        var (o, warnings) = Listening(() => JsonFiles.ParseObject("""{"a": 1, "b": 3, "a": 2}""", "x/config.json"));
        Assert.Equal("""{"a":2,"b":3}""", o.ToJsonString());
        Assert.Equal("x/config.json: the key \"a\" is given twice; the last value is used, as Python's json reads it", Assert.Single(warnings));
    }

    [Fact]
    public void DuplicatesAreResolvedAtEveryDepthAndNamedByTheirPath()
    {
        var (o, warnings) = Listening(() => JsonFiles.ParseObject("""{"r": [{"k": {"x": 1, "x": [1, 2]}}], "s": "t"}""", "f.json"));
        Assert.Equal("""{"r":[{"k":{"x":[1,2]}}],"s":"t"}""", o.ToJsonString());
        Assert.Contains("\"x\" (in r[0].k)", Assert.Single(warnings));
    }

    [Fact]
    public void ADuplicateKeyInConfigJsonIsReadAsTransformersReadsIt()
    {
        // exit 70 before issue 24 (JsonObject's "An item with the same key has already been added")
        string json = TinyModels.LlamaConfig.Replace("\"num_hidden_layers\": 2,", "\"num_hidden_layers\": 1000000000, \"num_hidden_layers\": 2,");
        var (config, warnings) = Listening(() => ModelConfig.Parse(json, "config.json"));
        Assert.Equal(2, config.NumHiddenLayers);
        Assert.Contains("num_hidden_layers", Assert.Single(warnings));
        // and the same through the command line, whose model directory reads it
        string dir = TinyModels.Create(Path.Combine(Path.GetTempPath(), $"irr-dupkey-{Guid.NewGuid():N}"));
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), json);
            var (code, output, error) = CliRunner.Run("inspect", dir);
            Assert.True(code == 0, error);
            Assert.Contains("Layers", output);
            Assert.Contains("warning: " + dir + "/config.json: the key \"num_hidden_layers\" is given twice", error);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ADuplicateVocabularyEntryTakesItsLastIdAsSerdesHashMap()
    {
        var json = Text.TinyVocabularies.ByteLevel().ToJsonString().Replace("\"he\":257", "\"he\":9,\"he\":257");
        Assert.Contains("\"he\":9,\"he\":257", json);
        var (tokenizer, warnings) = Listening(() => Irr.Text.Tokenizer.FromJson(json));
        Assert.Equal(257, tokenizer.TokenToId("he"));
        Assert.Contains("model.vocab", Assert.Single(warnings));
    }

    [Theory]
    [InlineData(63, true)]
    [InlineData(64, false)]
    [InlineData(100_000, false)]
    public void NestingDeeperThan64IsACleanErrorForConfigFiles(int depth, bool accepted)
    {
        string json = "{\"a\":" + new string('[', depth) + new string(']', depth) + "}";
        if (accepted)
        {
            Assert.NotNull(JsonFiles.ParseObject(json, "config.json"));
            return;
        }
        var e = Assert.Throws<IrrException>(() => JsonFiles.ParseObject(json, "config.json"));
        Assert.StartsWith("config.json: not valid JSON (line 1", e.Message);
        Assert.Contains("depth", e.Message);
    }

    [Fact]
    public void NestingDeeperThan256IsACleanErrorForTokenizerJson()
    {
        string json = "{\"model\":" + new string('[', 300_000) + new string(']', 300_000) + "}";
        var e = Assert.Throws<IrrException>(() => Irr.Text.Tokenizer.FromJson(json));
        Assert.StartsWith("tokenizer.json: not valid JSON", e.Message);
    }

    [Theory]
    [InlineData("{\"rope_theta\": NaN}")]
    [InlineData("{\"rope_theta\": Infinity}")]
    [InlineData("{\"rope_theta\": -Infinity}")]
    [InlineData("{\"a\": 1,}")]
    [InlineData("{\"a\": 1")]
    [InlineData("{\"a\": \"\u0001\"}")]
    public void PythonsNaNAndInfinityAndBrokenJsonAreRefusedAsNotJson(string json)
    {
        var e = Assert.Throws<IrrException>(() => JsonFiles.ParseObject(json, "config.json"));
        Assert.StartsWith("config.json: not valid JSON", e.Message);
    }

    [Fact]
    public void AFileOfTinyValuesIsRefusedByItsValueCountWithinTheMemoryBudget()
    {
        // 16 MB of "0," would take ~100 MB of parse metadata per 8 M values; 60 MB of them was an out-of-memory internal error
        using var dir = new TempDir();
        var text = new StringBuilder("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [");
        text.Insert(text.Length, "0,", 8_100_000).Append("0]}}");
        File.WriteAllText(dir["tokenizer.json"], text.ToString());
        var r = IrrProcess.Run(["tokenize", "--model", dir.Path, "--text", "hi"]);
        IrrProcess.AssertOneLineError(r, "tokenizer.json: the number of JSON values exceeds the limit of 8,000,000 (raise it with IRR_MAX_JSON_VALUES=…)");
    }

    [Fact]
    public void AFileLargerThanTheJsonLimitIsRefusedBeforeItIsRead()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"irr-jsonsize-{Guid.NewGuid():N}");
        TinyModels.Create(dir);
        try
        {
            // a 2 MB config.json (padding in a string) under IRR_MAX_JSON_BYTES=1MB
            var o = JsonNode.Parse(TinyModels.LlamaConfig)!.AsObject();
            o["padding"] = new string('x', 2_000_000);
            File.WriteAllText(Path.Combine(dir, "config.json"), o.ToJsonString());
            var r = IrrProcess.Run(["inspect", dir], env: new Dictionary<string, string> { ["IRR_MAX_JSON_BYTES"] = "1MB" });
            IrrProcess.AssertOneLineError(r, "config.json", "exceeds the limit of 1,000,000", "IRR_MAX_JSON_BYTES");
        }
        finally { Directory.Delete(dir, true); }
    }
}
