using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Realign;
using Irr.Realign.Baselines;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>
/// irr baseline safedelta against a float64 PyTorch implementation written from the paper and its released code's rule
/// (tests/fixtures/safedelta/make-reference.py): the selection and compensation on a 12 × 24 matrix in three blocks, and a
/// tiny Llama end to end (Hessians from the aligned model's own float64 forward); then the command on every family, full
/// and LoRA.
/// </summary>
public class SafeDeltaTests
{
    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    private static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    // Ours against torch's: the kept entries (exactly W_F in ours) must be the reference's, the values agree to float32 noise.
    private static void AssertMatches(string what, float[] ours, float[] finetuned, float[] expected, bool[] kept)
    {
        float scale = expected.Max(Math.Abs);
        for (int i = 0; i < ours.Length; i++)
        {
            Assert.True(kept[i] == (ours[i] == finetuned[i]), $"{what}[{i}]: torch kept {kept[i]}, irr {ours[i]} vs W_F {finetuned[i]}");
            Assert.True(Math.Abs(ours[i] - expected[i]) <= 2e-5f * scale, $"{what}[{i}]: torch {expected[i]}, irr {ours[i]}");
        }
    }

    [Fact]
    public void SelectionAndCompensationMatchTheFloat64ReferenceOnAMatrixOfThreeBlocks()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Text.Fixtures.Local("safedelta/matrix.json")));
        var root = doc.RootElement;
        int rows = root.GetProperty("rows").GetInt32(), cols = root.GetProperty("cols").GetInt32();
        var (h, wa, wf) = (Floats(root.GetProperty("H")), Floats(root.GetProperty("aligned")), Floats(root.GetProperty("finetuned")));
        var factor = ObsRecalibrator.Factor(h, cols, new ObsOptions { PercDamp = root.GetProperty("percdamp").GetDouble() }, out _)!;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            var options = new SafeDeltaOptions { Scale = c.GetProperty("scale").GetDouble(), BlockSize = root.GetProperty("blocksize").GetInt32() };
            var output = new float[rows * cols];
            var m = SafeDelta.Apply(wa, wf, output, new TargetMatrix("w", 0, "q_proj", rows, cols), factor, options, root.GetProperty("hidden_size").GetInt32());
            var kept = c.GetProperty("kept").EnumerateArray().Select(k => k.GetInt32() == 1).ToArray();
            AssertMatches($"s={options.Scale}", output, wf, Floats(c.GetProperty("expected")), kept);
            Assert.Equal(kept.Count(k => k), m.Kept);
            Assert.InRange(m.Spent, 0, m.Budget);
        }
    }

    [Fact]
    public void ATinyLlamaMatchesTheFloat64ReferenceEndToEnd()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Text.Fixtures.Local("safedelta/e2e.json")));
        var root = doc.RootElement;
        var sequences = root.GetProperty("sequences").EnumerateArray().Select(s => s.EnumerateArray().Select(t => t.GetInt32()).ToArray()).ToList();
        using var aligned = CheckpointWeights.Open(Text.Fixtures.Local("safedelta/e2e-aligned"));
        using var finetuned = CheckpointWeights.Open(Text.Fixtures.Local("safedelta/e2e-finetuned"));
        var written = new Dictionary<string, float[]>();
        var options = new SafeDeltaOptions { Scale = root.GetProperty("scale").GetDouble(), BlockSize = root.GetProperty("blocksize").GetInt32() };
        var report = SafeDelta.Run(aligned, finetuned, sequences, options, (name, values) => written.Add(name, values));

        Assert.Equal(finetuned.Config.ExpectedTensors().Select(t => t.Name), written.Keys);
        var weights = root.GetProperty("weights");
        Assert.Equal(14, report.Count);
        foreach (var (name, values) in written)
        {
            float[] scratch = [];
            var wf = finetuned.Load(name, ref scratch).ToArray();
            if (!weights.TryGetProperty(name, out var w)) { Assert.Equal(wf, values); continue; }   // not a target: θ_F's
            var kept = w.GetProperty("kept").EnumerateArray().Select(k => k.GetInt32() == 1).ToArray();
            AssertMatches(name, values, wf, Floats(w.GetProperty("expected")), kept);
            Assert.Equal(kept.Count(k => k), report.Single(m => ModelConfig.LinearWeightName(m.Layer, m.Module) == name).Kept);
        }
    }

    private static string SafetyData(TempDir dir)
    {
        var lines = Enumerable.Range(0, 5).Select(i => new JsonObject { ["instruction"] = $"how do I hurt {i} people", ["output"] = $"I can't help with that {i}." }.ToJsonString());
        File.WriteAllLines(dir["safety.jsonl"], lines);
        return dir["safety.jsonl"];
    }

    private static float[] Read(string model, string name)
    {
        using var m = ModelDirectory.Open(model);
        return m.ReadSingle(name);
    }

    [Fact]
    public void TheCommandWritesTheModelAndItsReportAndScaleZeroGivesTheAlignedWeights()
    {
        using var dir = new TempDir();
        var (aligned, _, finetuned) = ModelCommandTests.ThreeModels(dir);
        string data = SafetyData(dir);
        Ok(CliRunner.Run("baseline", "safedelta", "--base", aligned, "--finetuned", finetuned, "--safety-data", data, "--scale", "0", "-o", dir["zero"]));
        Ok(CliRunner.Run("baseline", "safedelta", "--base", aligned, "--finetuned", finetuned, "--safety-data", data, "--scale", "0.5",
            "--modules", "q_proj,down_proj", "-o", dir["half"]));
        using var model = ModelDirectory.Open(dir["zero"]);
        foreach (var t in model.Tensors)
        {
            bool target = t.Name.Contains("_proj", StringComparison.Ordinal);
            Assert.Equal(Read(target ? aligned : finetuned, t.Name), model.ReadSingle(t.Name));   // s = 0: nothing kept, nothing compensated
        }
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["half"], SafeDeltaReport.FileName)))!;
        Assert.Equal("safedelta", (string)report["method"]!);
        Assert.Equal(0.5, (double)report["options"]!["scale"]!);
        Assert.Equal(4, (int)report["totals"]!["matrices"]!);
        Assert.InRange((long)report["totals"]!["kept"]!, 1, (long)report["totals"]!["parameters"]! - 1);
        Assert.Equal(Read(finetuned, "model.layers.0.self_attn.k_proj.weight"), Read(dir["half"], "model.layers.0.self_attn.k_proj.weight"));
        Assert.True(File.Exists(Path.Combine(dir["half"], "README.md")));
    }

    [Theory]
    [InlineData("phi3")]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    public void EveryFamilyFullAndLora(string family)
    {
        using var dir = new TempDir();
        string Copy(string name)
        {
            string to = dir[name];
            Directory.CreateDirectory(to);
            foreach (var f in Directory.GetFiles(Text.Fixtures.Local($"torch/families/{name}"))) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
            return to;
        }
        string baseModel = ModelCommandTests.AddChatTokenizer(Copy(family)), adapter = Copy($"{family}-lora");
        string data = SafetyData(dir);
        Ok(CliRunner.Run("baseline", "safedelta", "--base", baseModel, "--adapter", adapter, "--safety-data", data, "--scale", "1", "-o", dir["lora"]));
        Ok(CliRunner.Run("baseline", "safedelta", "--base", baseModel, "--finetuned", dir["lora"], "--safety-data", data, "--scale", "0", "-o", dir["full"]));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["lora"], SafeDeltaReport.FileName)))!;
        using var model = ModelDirectory.Open(dir["lora"]);
        var modules = report["matrices"]!.AsArray().Select(m => (string)m!["module"]!).Distinct().ToList();
        Assert.Equal(model.Config.LinearModules, modules);
        Assert.InRange((long)report["totals"]!["kept"]!, 1, (long)report["totals"]!["parameters"]! - 1);
        foreach (string name in TargetModules.WeightNames(model.Config, model.Config.LinearModules))   // s = 0 on a full fine-tune: θ_A
            Assert.Equal(Read(baseModel, name), Read(dir["full"], name));
    }

    [Fact]
    public void ModulesTheAdapterDoesNotAdaptAreRefused()
    {
        using var dir = new TempDir();
        var (aligned, _, _) = ModelCommandTests.ThreeModels(dir);
        RestaTests.WriteRandomAdapter(aligned, dir["adapter"], ["q_proj", "v_proj"], new Random(5));
        var (code, _, err) = CliRunner.Run(["baseline", "safedelta", "--base", aligned, "--adapter", dir["adapter"], "--safety-data", SafetyData(dir),
            "--modules", "k_proj,o_proj", "-o", dir["out"]]);
        Assert.Equal(2, code);
        Assert.Equal("error: baseline safedelta: modules k_proj,o_proj: the adapter adapts none of them (it adapts q_proj, v_proj)", err.Trim());
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Theory]
    [InlineData("--scale", "-1", "scale")]
    [InlineData("--nsamples", "0", "nsamples")]
    [InlineData("--safety-data", "missing.jsonl", "missing.jsonl")]
    [InlineData("--safety-data", "empty.jsonl", "empty.jsonl: no records")]
    public void BadInputIsOneLineAndExitTwo(string option, string value, string named)
    {
        using var dir = new TempDir();
        var (aligned, _, finetuned) = ModelCommandTests.ThreeModels(dir);
        var args = new List<string> { "baseline", "safedelta", "--base", aligned, "--finetuned", finetuned, "--safety-data", SafetyData(dir), "-o", dir["out"] };
        if (value == "empty.jsonl") File.WriteAllText(dir[value], "");
        int at = args.IndexOf(option);
        if (at >= 0) args[at + 1] = option == "--safety-data" ? dir[value] : value;
        else args.AddRange([option, value]);
        var (code, _, err) = CliRunner.Run([.. args]);
        Assert.Equal(2, code);
        Assert.Contains(named, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(Directory.Exists(dir["out"]));
    }
}
