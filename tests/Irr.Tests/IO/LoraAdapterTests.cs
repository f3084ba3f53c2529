using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Tests.IO;

public class LoraAdapterTests
{
    private const string Q = "model.layers.0.self_attn.q_proj.weight";
    private const string Down = "model.layers.1.mlp.down_proj.weight";

    // A rank-4 adapter on q_proj (16×16) and down_proj (16×40) of the tiny Llama, written as PEFT does.
    private static (string Path, Dictionary<string, (float[] A, float[] B, int Out, int In)> Layers) MakeAdapter(TempDir dir, string baseModel, bool rslora = false, double alpha = 8)
    {
        var rng = new Random(11);
        var layers = new Dictionary<string, (float[] A, float[] B, int Out, int In)>();
        foreach (var (name, outDim, inDim) in new[] { (Q, 16, 16), (Down, 16, 40) })
        {
            var a = Reference(rng, 4 * inDim);
            var b = Reference(rng, outDim * 4);
            layers[name] = (a, b, outDim, inDim);
        }
        string path = dir["adapter"];
        var config = LoraConfig.Create(4, alpha, ["q_proj", "down_proj"], baseModel, rslora);
        LoraAdapter.Write(path, config, layers.Select(kv => (kv.Key, kv.Value.A, kv.Value.B, kv.Value.Out, kv.Value.In)).ToList(), TensorDType.F32, [baseModel]);
        return (path, layers);
    }

    private static float[] Reference(Random rng, int n) => Tensors.Reference.Uniform(rng, n);

    [Theory]
    [InlineData(false, 8.0)]   // scale α/r = 2
    [InlineData(true, 8.0)]    // rsLoRA: α/√r = 4
    public void MergeAddsScaledBTimesA(bool rslora, double alpha)
    {
        using var dir = new TempDir();
        string baseModel = TinyModels.Create(dir["base"], dtype: TensorDType.F32);
        var (path, layers) = MakeAdapter(dir, baseModel, rslora, alpha);
        using var model = ModelDirectory.Open(baseModel);
        using var adapter = LoraAdapter.Open(path);
        double scale = rslora ? alpha / 2 : alpha / 4;
        Assert.Equal(scale, adapter.Config.Scale);
        Assert.Equal(2, adapter.Pairs.Count);

        foreach (var (name, (a, b, outDim, inDim)) in layers)
        {
            var merged = adapter.ReadMerged(model, name);
            var w = model.ReadSingle(name);
            // Naive W + scale·B·A in double.
            for (int i = 0; i < outDim; i++)
                for (int j = 0; j < inDim; j++)
                {
                    double delta = 0;
                    for (int k = 0; k < 4; k++) delta += (double)b[i * 4 + k] * a[k * inDim + j];
                    double expected = w[i * inDim + j] + scale * delta;
                    Assert.True(Math.Abs(merged[i * inDim + j] - expected) <= 1e-6 * (1 + Math.Abs(expected)), $"{name}[{i},{j}] = {merged[i * inDim + j]}, expected {expected}");
                }
        }
        // A weight the adapter does not target comes back unchanged.
        Assert.Equal(model.ReadSingle("model.layers.0.self_attn.k_proj.weight"), adapter.ReadMerged(model, "model.layers.0.self_attn.k_proj.weight"));
    }

    [Fact]
    public void WrittenAdaptersUsePeftKeysAndConfig()
    {
        using var dir = new TempDir();
        string baseModel = TinyModels.Create(dir["base"]);
        var (path, layers) = MakeAdapter(dir, baseModel);
        using var file = SafetensorsFile.Open(Path.Combine(path, "adapter_model.safetensors"));
        Assert.Equal([4L, 16L], file.Get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape);
        Assert.Equal([16L, 4L], file.Get("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").Shape);
        Assert.Equal(layers[Down].A, file.ReadSingle("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(path, "adapter_config.json")))!;
        Assert.Equal("LORA", (string)config["peft_type"]!);
        Assert.Equal(4, (int)config["r"]!);
        Assert.Equal(8.0, (double)config["lora_alpha"]!);
        Assert.Equal(["q_proj", "down_proj"], config["target_modules"]!.AsArray().Select(x => (string)x!));
        using var adapter = LoraAdapter.Open(path);
        Assert.Equal(["q_proj", "down_proj"], adapter.Config.TargetModules);
    }

    [Fact]
    public void ModulesToSaveReplaceTheBaseTensor()
    {
        using var dir = new TempDir();
        string baseModel = TinyModels.Create(dir["base"], dtype: TensorDType.F32);
        string path = dir["adapter"];
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "adapter_config.json"), """{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj"],"modules_to_save":["lm_head"]}""");
        var head = Enumerable.Range(0, 64 * 16).Select(i => (float)i).ToArray();
        RawSafetensors.Write(Path.Combine(path, "adapter_model.safetensors"),
            """{"base_model.model.lm_head.weight":{"dtype":"F32","shape":[64,16],"data_offsets":[0,4096]}}""", RawSafetensors.Floats(head));
        using var model = ModelDirectory.Open(baseModel);
        using var adapter = LoraAdapter.Open(path);
        Assert.Equal(["lm_head.weight"], adapter.Replacements.Keys);
        Assert.Equal(head, adapter.ReadMerged(model, "lm_head.weight"));
    }

    private static IrrException OpenFails(TempDir dir, string configJson, string header, byte[] data, bool bin = false)
    {
        string path = dir["bad"];
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "adapter_config.json"), configJson);
        if (bin) File.WriteAllBytes(Path.Combine(path, "adapter_model.bin"), [0x80]);
        else RawSafetensors.Write(Path.Combine(path, "adapter_model.safetensors"), header, data);
        return Assert.Throws<IrrException>(() => LoraAdapter.Open(path).Dispose());
    }

    private const string Config = """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"]}""";

    [Fact]
    public void BrokenPickleAdaptersAreRefusedNamingTheFile()
    {
        using var dir = new TempDir();
        var e = OpenFails(dir, Config, "", [], bin: true);
        Assert.EndsWith("adapter_model.bin: not a PyTorch file (neither a zip archive nor a pickle)", e.Message);
    }

    [Fact]
    public void InconsistentAdaptersAreNamed()
    {
        using var dir = new TempDir();
        const string a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
        const string b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
        Assert.Contains("has no matching lora_B", OpenFails(dir, Config, $$$"""{"{{{a}}}":{"dtype":"F32","shape":[2,16],"data_offsets":[0,128]}}""", new byte[128]).Message);
        Assert.Contains("has rank 3 but adapter_config.json says r = 2",
            OpenFails(dir, Config, $$$"""{"{{{a}}}":{"dtype":"F32","shape":[3,16],"data_offsets":[0,192]},"{{{b}}}":{"dtype":"F32","shape":[16,3],"data_offsets":[192,384]}}""", new byte[384]).Message);
        Assert.Contains("DoRA", OpenFails(dir, """{"peft_type":"LORA","r":2,"lora_alpha":4,"use_dora":true}""", "{}", []).Message);
        Assert.Contains("peft_type 'IA3'", OpenFails(dir, """{"peft_type":"IA3"}""", "{}", []).Message);
        Assert.Contains("layer_replication", OpenFails(dir, """{"peft_type":"LORA","r":2,"layer_replication":[[0,1]]}""", "{}", []).Message);
        Assert.Contains("has rank 3 but adapter_config.json says r = 4 (rank_pattern applied)",
            OpenFails(dir, """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"rank_pattern":{"q_proj":4}}""",
                $$$"""{"{{{a}}}":{"dtype":"F32","shape":[3,16],"data_offsets":[0,192]},"{{{b}}}":{"dtype":"F32","shape":[16,3],"data_offsets":[192,384]}}""", new byte[384]).Message);
    }

    [Fact]
    public void ShapesThatDoNotFitTheBaseAreNamed()
    {
        using var dir = new TempDir();
        string baseModel = TinyModels.Create(dir["base"]);
        string path = dir["adapter"];
        // A LoRA for q_proj (16×16) whose A expects 20 inputs.
        var config = LoraConfig.Create(2, 4, ["q_proj"], baseModel);
        LoraAdapter.Write(path, config, [(Q, new float[2 * 20], new float[16 * 2], 16, 20)], TensorDType.F32, [baseModel]);
        using var model = ModelDirectory.Open(baseModel);
        using var adapter = LoraAdapter.Open(path);
        var e = Assert.Throws<IrrException>(() => adapter.ReadMerged(model, Q));
        Assert.Contains("does not fit the base weight [16, 16]", e.Message);
    }
}
