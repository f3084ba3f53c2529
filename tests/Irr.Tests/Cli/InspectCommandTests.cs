using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

public class InspectCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void DescribesAModel()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], maxShardBytes: 8192);
        var (code, output, error) = Run("inspect", m);
        Assert.True(code == 0, error);
        Assert.Contains("Architecture  LlamaForCausalLM (llama)", output);
        Assert.Contains("Layers        2", output);
        Assert.Contains("Heads         4 query, 2 key/value, head_dim 4", output);
        Assert.Contains("Parameters    7,504 (7.50 K)", output);
        Assert.Contains("stored as BF16 (", output);
        Assert.Contains("Shards        ", output);
        long bytes = Directory.GetFiles(m, "*.safetensors").Sum(f => new FileInfo(f).Length);
        Assert.Contains($"Size          {bytes:N0} bytes", output);
    }

    [Fact]
    public void JsonOutputIsMachineReadable()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"]);
        var (code, output, _) = Run("inspect", m, "--json", "--tensors");
        Assert.Equal(0, code);
        var d = JsonNode.Parse(output)!;
        Assert.Equal("model", (string)d["kind"]!);
        Assert.Equal(2, (int)d["num_hidden_layers"]!);
        Assert.Equal(16, (int)d["hidden_size"]!);
        Assert.Equal(2, (int)d["num_key_value_heads"]!);
        Assert.Equal(TinyModels.LlamaParameters, (long)d["parameters"]!);
        Assert.Equal(2 + 9 * 2 + 1, (int)d["tensor_count"]!); // embed, lm_head, 9 per layer, final norm
        var tensors = d["tensors"]!.AsArray();
        var down = tensors.Single(t => (string)t!["name"]! == "model.layers.1.mlp.down_proj.weight")!;
        Assert.Equal("BF16", (string)down["dtype"]!);
        Assert.Equal([16L, 40L], down["shape"]!.AsArray().Select(x => (long)x!));
    }

    [Fact]
    public void TensorListShowsNameDTypeAndShape()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"], dtype: TensorDType.F16);
        var (code, output, _) = Run("inspect", m, "--tensors");
        Assert.Equal(0, code);
        var line = output.Split('\n').Single(l => l.StartsWith("model.layers.0.self_attn.k_proj.weight ", StringComparison.Ordinal));
        Assert.Matches(@"^model\.layers\.0\.self_attn\.k_proj\.weight\s+F16\s+\[8, 16\]$", line.TrimEnd());
    }

    [Fact]
    public void DescribesAnAdapterAndASafetensorsFile()
    {
        using var dir = new TempDir();
        string m = TinyModels.Create(dir["m"]);
        var config = LoraConfig.Create(4, 16, ["q_proj", "v_proj"], "meta-llama/Llama-2-7b-chat-hf");
        LoraAdapter.Write(dir["a"], config,
            [("model.layers.0.self_attn.q_proj.weight", new float[4 * 16], new float[16 * 4], 16, 16),
             ("model.layers.0.self_attn.v_proj.weight", new float[4 * 16], new float[8 * 4], 8, 16)], TensorDType.BF16, [m]);
        var (code, output, _) = Run("inspect", dir["a"]);
        Assert.Equal(0, code);
        Assert.Contains("LoRA adapter", output);
        Assert.Contains("r 4, alpha 16, scale 4.00 (alpha/r)", output);
        Assert.Contains("Targets         q_proj, v_proj", output);
        Assert.Contains("Adapted layers  2", output);
        Assert.Contains("meta-llama/Llama-2-7b-chat-hf", output);
        Assert.Contains("Parameters      224\n", output.Replace("\r", "")); // A 4·16 + B 16·4 (q_proj), A 4·16 + B 8·4 (v_proj)

        (code, output, _) = Run("inspect", Path.Combine(m, "model.safetensors"), "--json");
        Assert.Equal(0, code);
        var d = JsonNode.Parse(output)!;
        Assert.Equal("safetensors", (string)d["kind"]!);
        Assert.Equal("pt", (string)d["metadata"]!["format"]!);
        Assert.Equal(TinyModels.LlamaParameters, (long)d["parameters"]!);
    }

    [Fact]
    public void BadInputExitsWithTwoAndOneLineNamingTheFile()
    {
        using var dir = new TempDir();
        string bad = RawSafetensors.Write(dir["broken.safetensors"], "{\"w\":", []);
        var (code, output, error) = Run("inspect", bad);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith($"error: {bad}: header is not valid JSON", error);
        Assert.Single(error.TrimEnd().Split('\n'));

        (code, _, error) = Run("inspect", dir["nothing-here"]);
        Assert.Equal(2, code);
        Assert.Contains("no such file or directory", error);

        string m = TinyModels.Create(dir["m"], include: (n, _) => n != "model.norm.weight");
        (code, _, error) = Run("inspect", m);
        Assert.Equal(2, code);
        Assert.Contains("missing model.norm.weight [16]", error);
        (code, var listing, _) = Run("inspect", m, "--no-check");
        Assert.Equal(0, code);
        Assert.Contains("not checked against config.json", listing);
    }

    public static TheoryData<string> BadInputs() => new()
    {
        "truncated", "header-too-long", "broken-json", "overlap", "out-of-range", "unknown-dtype",
        "missing-shard", "index-outside", "tensor-missing", "tensor-extra",
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void EveryKindOfBadInputIsOneLineAndExitCodeTwo(string kind)
    {
        using var dir = new TempDir();
        string F32(string name, string offsets, int count) => $$$"""{"{{{name}}}":{"dtype":"F32","shape":[{{{count}}}],"data_offsets":{{{offsets}}}}}""";
        string path = kind switch
        {
            "truncated" => WriteBytes(dir["t.safetensors"], RawSafetensors.Build(F32("w", "[0,16]", 4), new byte[16])[..^3]),
            "header-too-long" => WriteBytes(dir["h.safetensors"], [0xFF, 0xFF, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}']),
            "broken-json" => RawSafetensors.Write(dir["j.safetensors"], "{\"w\": [", []),
            "overlap" => RawSafetensors.Write(dir["o.safetensors"], """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", new byte[12]),
            "out-of-range" => RawSafetensors.Write(dir["r.safetensors"], F32("w", "[8,24]", 4), new byte[16]),
            "unknown-dtype" => RawSafetensors.Write(dir["d.safetensors"], """{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}""", new byte[1]),
            _ => dir["m"],
        };
        if (kind is "missing-shard" or "index-outside")
        {
            TinyModels.Create(path, maxShardBytes: 4096);
            if (kind == "missing-shard") File.Delete(Directory.GetFiles(path, "model-00003-of-*")[0]);
            else
            {
                string index = Path.Combine(path, "model.safetensors.index.json");
                File.WriteAllText(index, File.ReadAllText(index).Replace("\"model-00001-of-", "\"../model-00001-of-"));
            }
        }
        if (kind == "tensor-missing") TinyModels.Create(path, include: (n, _) => n != "model.layers.0.mlp.gate_proj.weight");
        if (kind == "tensor-extra")
        {
            TinyModels.Create(path, TinyModels.LlamaConfig.Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));
            File.WriteAllText(Path.Combine(path, "config.json"), TinyModels.LlamaConfig);
        }

        var (code, output, error) = Run("inspect", path);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var lines = error.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: " + path, lines[0]);
        Assert.DoesNotContain("Exception", lines[0]);
    }

    private static string WriteBytes(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
