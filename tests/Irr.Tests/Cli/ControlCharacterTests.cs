using System.Text;
using System.Text.Json.Nodes;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>
/// Text from a file (tensor names, metadata, keys, pickle globals) reaches the terminal escaped (issue 24, "Clean
/// messages"): an error or a warning stays one line and cannot forge an <c>error:</c>/<c>warning:</c> line, and no ESC
/// sequence, BEL, NUL or CR reaches the terminal. The expected escapes are written by hand (<c>\n</c>, <c>\x1b</c>, …).
/// </summary>
public class ControlCharacterTests
{
    // A name that would end the line, forge an error line, colour the terminal, ring, and hide text (CR, NUL, C1 CSI, LS, RLO).
    private const string Evil = "w\nerror: forged\u001b[31m\u0007\u0000\r\u009b\u2028\u202e";
    private const string EvilShown = "w\\nerror: forged\\x1b[31m\\x07\\x00\\r\\x9b\\u2028\\u202e";

    private static string Header(params (string Name, string DType, long[] Shape, long Begin, long End)[] tensors)
    {
        var o = new JsonObject { ["__metadata__"] = new JsonObject { [Evil] = "v\u001b]0;title\u0007" } };
        foreach (var t in tensors)
            o[t.Name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(t.Begin, t.End),
            };
        return o.ToJsonString();
    }

    [Fact]
    public void InspectPrintsTensorNamesAndMetadataEscapedOneLineEach()
    {
        using var dir = new TempDir();
        string file = RawSafetensors.Write(dir["evil.safetensors"], Header((Evil, "F32", [1], 0, 4), ("ok", "F32", [1], 4, 8)), new byte[8]);
        var (code, output, error) = CliRunner.Run("inspect", file, "--tensors");
        Assert.True(code == 0, error);
        IrrProcess.AssertNoControlCharacters(output + error);
        Assert.Contains(EvilShown + "  F32", output);
        Assert.Contains("Metadata", output);
        Assert.Contains("v\\x1b]0;title\\x07", output);
        Assert.DoesNotContain(output.Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));
        // --json keeps the names exact, escaped the JSON way
        (code, output, _) = CliRunner.Run("inspect", file, "--tensors", "--json");
        Assert.Equal(0, code);
        Assert.Equal(Evil, JsonNode.Parse(output)!["tensors"]![0]!["name"]!.GetValue<string>());
        IrrProcess.AssertNoControlCharacters(output);
    }

    [Fact]
    public void AnErrorAboutABadTensorStaysOneLine()
    {
        using var dir = new TempDir();
        // the tensor claims 8 bytes in a 4-byte data section
        string file = RawSafetensors.Write(dir["evil.safetensors"], Header((Evil, "F32", [2], 0, 8)), new byte[4]);
        var (code, _, error) = CliRunner.Run("inspect", file);
        Assert.Equal(2, code);
        IrrProcess.AssertNoControlCharacters(error);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", error);
        Assert.Contains(EvilShown, error);
    }

    [Fact]
    public void AForbiddenPickleGlobalIsNamedEscapedByConvert()
    {
        using var dir = new TempDir();
        // GLOBAL "evil<ESC>[31m<BEL> / sys<NUL>tem<CR>", called: refused by name before anything runs
        byte[] pickle = TorchFileTests.Bytes("\u0080\u0002cevil\u001b[31m\u0007\nsys\u0000tem\r\n)R.");
        string pt = TorchFileTests.Archive(dir, pickle);
        var (code, _, error) = CliRunner.Run("convert", pt, "-o", dir["out.safetensors"]);
        Assert.Equal(2, code);
        IrrProcess.AssertNoControlCharacters(error);
        string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains("refuses the pickle global 'evil", line);
        Assert.False(File.Exists(dir["out.safetensors"]));
    }

    [Fact]
    public void AWarningAboutAKeyFromAFileStaysOneLineAndAModelCheckErrorToo()
    {
        using var dir = new TempDir();
        string model = TinyModels.Create(dir["model"]);
        // a duplicate key whose name forges a warning line: the warning names it, escaped
        string config = TinyModels.LlamaConfig.Replace("\"hidden_act\": \"silu\",", $"\"{JsonEscaped(Evil)}\": 1, \"{JsonEscaped(Evil)}\": 2, \"hidden_act\": \"silu\",");
        File.WriteAllText(Path.Combine(model, "config.json"), config);
        var (code, _, error) = CliRunner.Run("inspect", model);
        Assert.True(code == 0, error);
        IrrProcess.AssertNoControlCharacters(error);
        Assert.Equal("warning: " + Path.Combine(model, "config.json") + $": the key \"{EvilShown}\" is given twice; the last value is used, as Python's json reads it\n", error);

        // an architecture name with control characters: refused in one line, through the process as a user sees it
        File.WriteAllText(Path.Combine(model, "config.json"), TinyModels.LlamaConfig.Replace("\"LlamaForCausalLM\"", $"\"{JsonEscaped(Evil)}\""));
        var r = IrrProcess.Run(["inspect", model]);
        IrrProcess.AssertOneLineError(r, "config.json", EvilShown);
    }

    [Fact]
    public void AWrongCommandLineIsQuotedEscaped()
    {
        var (code, _, error) = CliRunner.Run("inspect", "a", "--bogus\u001b[2J\nerror: forged");
        Assert.Equal(1, code);
        IrrProcess.AssertNoControlCharacters(error);
        Assert.Contains("--bogus\\x1b[2J\\nerror: forged", error);
        Assert.DoesNotContain(error.Split('\n'), l => l.StartsWith("error: forged", StringComparison.Ordinal));
    }

    private static string JsonEscaped(string s) => JsonValue.Create(s).ToJsonString()[1..^1];
}
