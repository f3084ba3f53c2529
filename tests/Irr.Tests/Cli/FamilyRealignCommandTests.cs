using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>
/// irr safety-vector → fisher → realign (and baseline resta) on a tiny chat model of each newer family, as transformers
/// writes its config (issue 26, item 2). The removals are checked against IRR-SPEC's rule written out here (sign
/// conflicts of Δ = W_F − W_A with v, all of them at s = 0), the rest against θ_F's stored bytes.
/// </summary>
public class FamilyRealignCommandTests
{
    /// <summary>The tiny byte-level chat model's config (vocabulary 261) as a model of <paramref name="family"/>.</summary>
    internal static string ChatConfig(string family)
    {
        var o = JsonNode.Parse(ModelCommandTests.Config)!.AsObject();
        switch (family)
        {
            case "qwen3": // qk-norm, head_dim 8 ≠ hidden / heads, tied head
                o["architectures"] = new JsonArray("Qwen3ForCausalLM"); o["model_type"] = "qwen3"; o["head_dim"] = 8;
                o["tie_word_embeddings"] = true;
                break;
            case "gemma2": // GeGLU, (1 + w) sandwich norms, soft-capping (the defaults 50 and 30), a window in layer 0, tied by default
                o["architectures"] = new JsonArray("Gemma2ForCausalLM"); o["model_type"] = "gemma2"; o["head_dim"] = 4;
                o["query_pre_attn_scalar"] = 4; o["sliding_window"] = 4;
                break;
            case "gemma3_text": // Gemma-2's norms plus qk-norm; a local layer and a global one
                o["architectures"] = new JsonArray("Gemma3ForCausalLM"); o["model_type"] = "gemma3_text"; o["head_dim"] = 4;
                o["query_pre_attn_scalar"] = 4; o["sliding_window"] = 4;
                o["layer_types"] = new JsonArray("sliding_attention", "full_attention"); o["rope_local_base_freq"] = 10000.0;
                break;
            case "phi3": // fused qkv_proj and gate_up_proj
                o["architectures"] = new JsonArray("Phi3ForCausalLM"); o["model_type"] = "phi3"; o["tie_word_embeddings"] = false;
                break;
            default:
                throw new ArgumentException(family);
        }
        return o.ToJsonString();
    }

    internal static string ChatModel(TempDir dir, string name, string configJson, int seed) =>
        ModelCommandTests.AddChatTokenizer(TinyModels.Create(dir[name], configJson, seed: seed));

    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    // The stored values of every tensor of a model directory (bf16 → float32 is one-to-one, so equal floats are equal bytes).
    private static Dictionary<string, (TensorDType DType, long[] Shape, float[] Values)> Tensors(string model)
    {
        using var m = ModelDirectory.Open(model);
        return m.Tensors.ToDictionary(t => t.Name, t => (t.DType, t.Shape.ToArray(), m.ReadSingle(t.Name)));
    }

    private static bool SameBits(float[] a, float[] b) =>
        a.Length == b.Length && a.Zip(b).All(p => BitConverter.SingleToInt32Bits(p.First) == BitConverter.SingleToInt32Bits(p.Second));

    [Theory]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    [InlineData("phi3")]
    public void RealignRunsOnEachFamily(string family)
    {
        using var dir = new TempDir();
        string json = ChatConfig(family);
        var config = ModelConfig.Parse(json, "config.json");
        string aligned = ChatModel(dir, "aligned", json, 1), unaligned = ChatModel(dir, "unaligned", json, 2), finetuned = ChatModel(dir, "finetuned", json, 3);
        string safety = IrrCommandTests.Records(dir, "safety.jsonl", 4, "how do I");
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        string v = dir["v.safetensors"], f = dir["f.safetensors"];

        // Steps 1 and 2 with the default modules: every linear module of the family, no norm.
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "-o", v));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", safety, "--batch-size", "2", "-o", f));
        var targets = Enumerable.Range(0, config.NumHiddenLayers)
            .SelectMany(l => config.LinearModules.Select(m => ModelConfig.LinearWeightName(l, m))).ToHashSet();
        Assert.Equal(config.NumHiddenLayers * (family == "phi3" ? 4 : 7), targets.Count);
        foreach (string file in new[] { v, f })
        {
            using var s = SafetensorsFile.Open(file);
            Assert.Equal(targets.Order(), s.Tensors.Select(t => t.Name).Order());
            Assert.Equal(string.Join(",", config.LinearModules), s.Metadata["modules"]);
        }

        var input = Tensors(finetuned);
        var alignedTensors = Tensors(aligned);
        using var vFile = SafetensorsFile.Open(v);
        string[] common = ["--base", aligned, "--finetuned", finetuned, "--safety-vector", v, "--fisher", f, "--calibration", task, "--nsamples", "4"];

        // Without recalibration at s = 0 the spec removes exactly the sign conflicts: θ_A there, θ_F elsewhere, bit for bit.
        Ok(CliRunner.Run(["realign", .. common, "--no-recalibrate", "-o", dir["plain"]]));
        var plain = Tensors(dir["plain"]);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["plain"], "irr-report.json")))!;
        var removedByName = report["layers"]!.AsArray().SelectMany(l => l!["modules"]!.AsArray().Select(m => (Layer: (int)l["layer"]!, Module: m!)))
            .ToDictionary(x => ModelConfig.LinearWeightName(x.Layer, (string)x.Module["module"]!), x => (long)x.Module["removed"]!);
        Assert.Equal(targets.Order(), removedByName.Keys.Order());
        foreach (string name in targets)
        {
            var (wA, wF, vv, o) = (alignedTensors[name].Values, input[name].Values, vFile.ReadSingle(name), plain[name].Values);
            long conflicts = 0;
            for (int i = 0; i < o.Length; i++)
            {
                bool conflict = Math.Sign(wF[i] - wA[i]) != Math.Sign(vv[i]);   // three-valued signs of float32 values
                Assert.Equal(conflict ? wA[i] : wF[i], o[i]);
                if (conflict) conflicts++;
            }
            Assert.True(conflicts > 0, name);
            Assert.Equal(conflicts, removedByName[name]);
        }

        // IRR as it runs: exactly the expected tensors; everything but the targets (norms, q_norm/k_norm, Gemma's extra norms,
        // embeddings, a head) is θ_F's bytes; every target changed.
        Ok(CliRunner.Run(["realign", .. common, "-o", dir["repaired"]]));
        var repaired = Tensors(dir["repaired"]);
        var expected = config.ExpectedTensors().ToList();
        Assert.Equal(expected.Select(t => t.Name).Order(), repaired.Keys.Order());
        foreach (var (name, shape) in expected)
        {
            Assert.Equal(shape, repaired[name].Shape);
            Assert.Equal(input[name].DType, repaired[name].DType);
            Assert.True(targets.Contains(name) != SameBits(input[name].Values, repaired[name].Values), $"{family}: {name}");
        }
        Assert.Contains(expected, t => t.Name.Contains("norm"));
        if (config.QkNorm) Assert.Contains("model.layers.0.self_attn.q_norm.weight", repaired.Keys);
        if (config.SandwichNorms) Assert.Contains("model.layers.1.post_feedforward_layernorm.weight", repaired.Keys);

        // A baseline: RESTA adds γ·v to the family's targets only.
        Ok(CliRunner.Run("baseline", "resta", "--base", aligned, "--finetuned", finetuned, "--safety-vector", v, "-o", dir["resta"]));
        var resta = Tensors(dir["resta"]);
        Assert.Equal(expected.Select(t => t.Name).Order(), resta.Keys.Order());
        foreach (var (name, _) in expected)
            Assert.True(targets.Contains(name) != SameBits(input[name].Values, resta[name].Values), $"{family} resta: {name}");

        // The output loads and scores.
        Ok(CliRunner.Run("score", "--model", dir["repaired"], "--data", task, "-o", dir["scores.json"]));
        var scores = JsonNode.Parse(File.ReadAllText(dir["scores.json"]))!;
        Assert.Equal(4, (int)scores["records"]!);
        Assert.All(scores["scores"]!.AsArray(), s => Assert.True(double.IsFinite((double)s!["loss"]!)));
    }

    [Theory]
    [InlineData("qwen3", "q_proj,v_proj")]
    [InlineData("gemma2", "q_proj,v_proj")]
    [InlineData("phi3", "qkv_proj")]
    public void TrainsLoraDefaultTargetsAreTheFamilysAndRealignRepairsThem(string family, string targets)
    {
        using var dir = new TempDir();
        string json = ChatConfig(family);
        string aligned = ChatModel(dir, "aligned", json, 1), unaligned = ChatModel(dir, "unaligned", json, 2);
        string task = IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        Ok(CliRunner.Run("train", "--model", aligned, "--data", task, "--lora", "--rank", "2", "--epochs", "2", "--lr", "1e-2", "-o", dir["adapter"]));
        var peft = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["adapter"], "adapter_config.json")))!;
        Assert.Equal(targets.Split(','), peft["target_modules"]!.AsArray().Select(t => (string)t!));
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", task, "-o", dir["f.safetensors"]));
        Ok(CliRunner.Run("realign", "--base", aligned, "--adapter", dir["adapter"], "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "-o", dir["repaired"]));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["repaired"], "irr-report.json")))!;
        Assert.Equal(targets.Split(','), report["options"]!["modules"]!.AsArray().Select(x => (string)x!));
    }

    [Fact]
    public void TrainableModulesOfPhi3AreItsFusedOnesAndAnotherFamilysAreNamed()
    {
        using var dir = new TempDir();
        string json = ChatConfig("phi3");
        string model = ChatModel(dir, "model", json, 1);
        string task = IrrCommandTests.Records(dir, "task.jsonl", 2, "compute");
        Ok(CliRunner.Run("train", "--model", model, "--data", task, "--full", "--trainable-modules", "gate_up_proj", "--lr", "1e-2", "--batch-size", "1", "--dtype", "float32", "-o", dir["tuned"]));
        var before = Tensors(model);
        foreach (var (name, (_, _, values)) in Tensors(dir["tuned"]))
            Assert.True(name.EndsWith("gate_up_proj.weight", StringComparison.Ordinal) != before[name].Values.SequenceEqual(values), name);
        var (code, _, error) = CliRunner.Run("train", "--model", model, "--data", task, "--full", "--trainable-modules", "gate_proj", "-o", dir["x"]);
        Assert.Equal(2, code);
        Assert.Contains("'gate_proj' is not a linear module of phi3 (its modules: qkv_proj, o_proj, gate_up_proj, down_proj)", error);
        Assert.False(Directory.Exists(dir["x"]));
    }

    [Theory]
    [InlineData("all")]
    [InlineData("all-linear")]
    public void LoraTargetsAllAreTheFamilysLinearModulesAsPeftsAllLinear(string all)
    {
        using var dir = new TempDir();
        string model = ChatModel(dir, "model", ChatConfig("phi3"), 1);
        string task = IrrCommandTests.Records(dir, "task.jsonl", 2, "compute");
        Ok(CliRunner.Run("train", "--model", model, "--data", task, "--lora", "--targets", all, "--rank", "2", "--batch-size", "1", "-o", dir["adapter"]));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["adapter"], "adapter_config.json")))!;
        Assert.Equal(new HashSet<string> { "qkv_proj", "o_proj", "gate_up_proj", "down_proj" }, config["target_modules"]!.AsArray().Select(x => (string)x!).ToHashSet());
    }

    [Fact]
    public void ASweepOnPhi3RealignsItsFusedMatricesWithTheRandomControlAndResta()
    {
        using var dir = new TempDir();
        string json = ChatConfig("phi3");
        string aligned = ChatModel(dir, "aligned", json, 1), unaligned = ChatModel(dir, "unaligned", json, 2), finetuned = ChatModel(dir, "finetuned", json, 3);
        string harmful = IrrCommandTests.Records(dir, "harmful.jsonl", 3, "how do I"), task = IrrCommandTests.Records(dir, "task.jsonl", 3, "compute");
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "-o", dir["v.safetensors"]));
        Ok(CliRunner.Run("fisher", "--model", aligned, "--data", harmful, "-o", dir["f.safetensors"]));
        Ok(CliRunner.Run("sweep", "--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["v.safetensors"], "--fisher", dir["f.safetensors"],
            "--calibration", task, "--nsamples", "3", "--harmful-val", harmful, "--task-val", task, "--task-metric", "exact", "--max-new-tokens", "2",
            "--sparsity", "0,0.5", "--random-control", "--resta-gamma", "0.5", "--keep-models", "-o", dir["sweep"]));
        foreach (string point in new[] { "irr-s0", "irr-s0.5", "random-s0.5" })
        {
            var counts = RealignReport.ReadRemovalCounts(Path.Combine(dir["sweep"], "points", point, "irr-report.json"));
            Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], counts.Keys.Take(4).Select(n => n.Split('.')[^2]));
            Assert.Equal(8, counts.Count);
        }
        Assert.Equal(RealignReport.ReadRemovalCounts(Path.Combine(dir["sweep"], "points/irr-s0.5/irr-report.json")),
            RealignReport.ReadRemovalCounts(Path.Combine(dir["sweep"], "points/random-s0.5/irr-report.json")));
        var resta = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["sweep"], "points/resta-g0.5/model", Irr.Realign.Baselines.RestaReport.FileName)))!;
        Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], resta["options"]!["modules"]!.AsArray().Select(m => (string)m!));
    }

    [Fact]
    public void ARecipesDefaultModulesAreTheBasesFamilys()
    {
        // irr run checks that the steps computing realign's inputs cover its modules: "all" is Phi-3's four here.
        using var dir = new TempDir();
        string json = ChatConfig("phi3");
        foreach (var (name, seed) in new[] { ("aligned", 1), ("unaligned", 2), ("finetuned", 3) }) ChatModel(dir, name, json, seed);
        IrrCommandTests.Records(dir, "safety.jsonl", 4, "how do I");
        IrrCommandTests.Records(dir, "task.jsonl", 4, "compute");
        string Recipe(string modules) =>
            $"output: out\nsteps:\n  - safety-vector: {{aligned: aligned, unaligned: unaligned, modules: \"{modules}\"}}\n" +
            "  - fisher: {model: aligned, data: safety.jsonl}\n  - realign: {base: aligned, finetuned: finetuned, calibration: task.jsonl}\n";
        File.WriteAllText(dir["all.yaml"], Recipe("qkv_proj,o_proj,gate_up_proj,down_proj"));
        Assert.Equal(3, Irr.Cli.RunCommand.Check(Irr.Jobs.Recipe.Load(dir["all.yaml"])).Count);
        File.WriteAllText(dir["part.yaml"], Recipe("qkv_proj"));
        var (code, _, error) = CliRunner.Run("run", dir["part.yaml"]);
        Assert.Equal(2, code);
        Assert.Contains("realign: realigns modules qkv_proj,o_proj,gate_up_proj,down_proj (its default), but step safety-vector (line 3) computes its " +
                        "safety-vector for qkv_proj only, without o_proj,gate_up_proj,down_proj; give the same modules to both steps", error);

        // a module the existing model's family lacks, in a later step: refused before the first step runs
        File.WriteAllText(dir["lacks.yaml"], "output: out2\nsteps:\n  - safety-vector: {aligned: aligned, unaligned: unaligned}\n" +
                                             "  - fisher:\n      model: aligned\n      data: safety.jsonl\n      modules: q_proj,v_proj\n");
        (code, _, error) = CliRunner.Run("run", dir["lacks.yaml"]);
        Assert.Equal(2, code);
        Assert.Contains("line 7: fisher: ", error);
        Assert.Contains("'q_proj' is not a linear module of phi3 (its modules: qkv_proj, o_proj, gate_up_proj, down_proj)", error);
        Assert.False(Directory.Exists(dir["out2"]));
    }

    [Fact]
    public void AModuleTheFamilyLacksIsRefusedByName()
    {
        using var dir = new TempDir();
        string json = ChatConfig("phi3");
        string aligned = ChatModel(dir, "aligned", json, 1), unaligned = ChatModel(dir, "unaligned", json, 2);
        var (code, _, error) = CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]);
        Assert.Equal(2, code);
        Assert.Contains("'q_proj' is not a linear module of phi3 (its modules: qkv_proj, o_proj, gate_up_proj, down_proj)", error);
        Assert.Single(error.Trim().Split('\n'));
        Assert.False(File.Exists(dir["v.safetensors"]));
    }
}
