using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Realign;
using Irr.Realign.Baselines;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>
/// irr baseline antidote against a float64 PyTorch reference (tests/fixtures/antidote/make_antidote.py): the masks the
/// Wanda scores |W|·‖X‖ choose on the inputs of a float64 forward of θ_F over harmful records, on Qwen3 (separate q/k/v,
/// gate/up) and Phi-3 (fused qkv_proj, gate_up_proj), full and LoRA fine-tunes.
/// </summary>
public class AntidoteTests
{
    private static string Fixture(string name) => Text.Fixtures.Local(name);

    private static JsonNode Reference() => JsonNode.Parse(File.ReadAllText(Fixture("antidote/reference.json")))!;

    public static TheoryData<int> Cases() => [0, 1, 2, 3, 4];

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    // A copy of a families/ checkpoint with the byte-level test tokenizer and chat template, named after it.
    internal static string Copy(TempDir dir, string variant)
    {
        string model = dir[variant];
        Directory.CreateDirectory(model);
        foreach (string f in Directory.EnumerateFiles(Fixture($"torch/families/{variant}"))) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        return ModelCommandTests.AddChatTokenizer(model);
    }

    // The pruned flat indices of a tensor, and the rows where float32 may swap the entries at the cut (near ties).
    private static (HashSet<int> Pruned, HashSet<int> TiedRows) Expected(JsonNode c, string tensor) =>
        (c["pruned"]![tensor]!.AsArray().Select(x => (int)x!).ToHashSet(),
         c["near_ties"]!.AsArray().Where(t => (string)t![0]! == tensor).Select(t => (int)t![1]!).ToHashSet());

    // `values` with the entries pruned set to zero; in near-tie rows, the rows of `actual` are taken once their count of
    // zeroed entries is checked.
    private static float[] Pruned(float[] values, int cols, JsonNode c, string tensor, float[]? actual = null)
    {
        var (pruned, tied) = Expected(c, tensor);
        var result = (float[])values.Clone();
        foreach (int i in pruned) result[i] = 0;
        foreach (int row in tied)
        {
            Assert.NotNull(actual);
            int wanted = pruned.Count(i => i / cols == row);
            Assert.Equal(wanted, Enumerable.Range(row * cols, cols).Count(i => actual[i] == 0 && values[i] != 0));
            Array.Copy(actual, row * cols, result, row * cols, cols);
        }
        return result;
    }

    private static (string Base, string? Finetuned, string? Adapter, string Data) Inputs(TempDir dir, JsonNode c, JsonNode reference)
    {
        string variant = (string)c["variant"]!;
        File.WriteAllLines(dir["harmful.jsonl"], reference["records"]!.AsArray().Select(r => r!.ToJsonString()));
        // A full fine-tune: Antidote reads θ_A only for its architecture; the bfloat16 copy of the weights serves.
        return (string)c["kind"]! == "full"
            ? (Copy(dir, variant + "-bf16"), Copy(dir, variant), null, dir["harmful.jsonl"])
            : (Copy(dir, variant), null, Fixture($"torch/families/{variant}-lora"), dir["harmful.jsonl"]);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheMasksEqualTheFloat64Reference(int index)
    {
        var reference = Reference();
        var c = reference["cases"]![index]!;
        double ratio = (double)c["ratio"]!;
        using var dir = new TempDir();
        var (@base, finetuned, adapter, data) = Inputs(dir, c, reference);
        string[] args = ["baseline", "antidote", "--base", @base, "--data", data, "-o", dir["out"],
            .. finetuned is not null ? ["--finetuned", finetuned] : new[] { "--adapter", adapter! }];
        bool byDefault = ratio == (adapter is null ? AntidoteJob.FullRatio : AntidoteJob.LoraRatio);
        if (!byDefault) args = [.. args, "--mask-ratio", ratio.ToString("R", System.Globalization.CultureInfo.InvariantCulture)];
        var run = CliRunner.Run(args);
        Assert.True(run.Code == 0, run.Err);

        using var output = ModelDirectory.Open(dir["out"]);
        using var theta = CheckpointWeights.Open(finetuned ?? @base, adapter);
        using var aligned = ModelDirectory.Open(@base);
        using var lora = adapter is null ? null : SafetensorsFile.Open(Path.Combine(adapter, LoraAdapter.WeightsFile));
        var targets = TargetModules.WeightNames(output.Config, TargetModules.For(output.Config, TargetModules.All)).ToHashSet();
        long pruned = 0;
        foreach (var t in output.Tensors)
        {
            float[] own = [];
            var wf = theta.Load(t.Name, ref own).ToArray();
            var actual = output.ReadSingle(t.Name);
            float[] expected = wf;
            int rows = (int)t.Shape[0], cols = t.Shape.Count > 1 ? (int)t.Shape[1] : 1;
            if (targets.Contains(t.Name) && lora is null)
                expected = Pruned(wf, cols, c, t.Name, actual);
            else if (targets.Contains(t.Name) && lora is not null)
            {
                // W_A + s·B'·A' by hand: the k-sum and the scaled add fused as the GEMM kernel does (s = 4/2).
                string module = "base_model.model." + t.Name[..^".weight".Length];
                Assert.True(lora.TryGetEntry(module + ".lora_A.weight", out var entry));
                int r = (int)entry.Shape[0];
                var a = Pruned(lora.ReadSingle(module + ".lora_A.weight"), cols, c, module + ".lora_A.weight");
                var b = Pruned(lora.ReadSingle(module + ".lora_B.weight"), r, c, module + ".lora_B.weight");
                expected = aligned.ReadSingle(t.Name);
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < cols; j++)
                    {
                        float acc = 0;
                        for (int k = 0; k < r; k++) acc = MathF.FusedMultiplyAdd(b[i * r + k], a[k * cols + j], acc);
                        expected[i * cols + j] = MathF.FusedMultiplyAdd(acc, 2f, expected[i * cols + j]);
                    }
            }
            Assert.True(Bits(expected).SequenceEqual(Bits(actual)), $"case {index}: {t.Name} differs");
        }
        foreach (var p in c["pruned"]!.AsObject()) pruned += p.Value!.AsArray().Count;

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], AntidoteReport.FileName)))!;
        Assert.Equal("antidote", (string)report["method"]!);
        Assert.Equal(ratio, (double)report["mask_ratio"]!);
        Assert.Equal(4, (int)report["records"]!);
        Assert.Equal(reference["input_ids"]!.AsArray().Sum(s => s!.AsArray().Count), (long)report["tokens"]!);
        Assert.Equal(pruned, (long)report["totals"]!["pruned"]!);
        Assert.Equal(targets.Count, (int)report["totals"]!["matrices"]!);
    }

    [Fact]
    public void TheRecordsAreTokenizedAsTheReferenceTokenizedThem()
    {
        var reference = Reference();
        using var dir = new TempDir();
        string model = Copy(dir, "qwen3");
        File.WriteAllLines(dir["harmful.jsonl"], reference["records"]!.AsArray().Select(r => r!.ToJsonString()));
        var run = CliRunner.Run("score", "--model", model, "--data", dir["harmful.jsonl"], "-o", dir["scores.json"]);
        Assert.True(run.Code == 0, run.Err);
        var scores = JsonNode.Parse(File.ReadAllText(dir["scores.json"]))!["scores"]!.AsArray();
        var ids = reference["input_ids"]!.AsArray();
        for (int i = 0; i < ids.Count; i++)
            Assert.Equal(ids[i]!.AsArray().Select(x => (int)x!), scores[i]!["input_ids"]!.AsArray().Select(x => (int)x!));
    }

    [Fact]
    public void RatioZeroGivesThetaFAndModulesSelectASubset()
    {
        using var dir = new TempDir();
        var (aligned, _, finetuned) = ModelCommandTests.ThreeModels(dir);
        File.WriteAllLines(dir["harmful.jsonl"], ["""{"instruction": "pick a lock", "output": "rake all pins"}"""]);
        var run = CliRunner.Run("baseline", "antidote", "--base", aligned, "--finetuned", finetuned, "--data", dir["harmful.jsonl"],
            "--mask-ratio", "0", "-o", dir["zero"]);
        Assert.True(run.Code == 0, run.Err);
        using var f = ModelDirectory.Open(finetuned);
        using (var o = ModelDirectory.Open(dir["zero"]))
            foreach (var t in f.Tensors) Assert.Equal(Bits(f.ReadSingle(t.Name)), Bits(o.ReadSingle(t.Name)));

        run = CliRunner.Run("baseline", "antidote", "--base", aligned, "--finetuned", finetuned, "--data", dir["harmful.jsonl"],
            "--mask-ratio", "0.5", "--modules", "v_proj", "-o", dir["v"]);
        Assert.True(run.Code == 0, run.Err);
        Assert.Contains("2 matrices (v_proj)", run.Out);
        using var v = ModelDirectory.Open(dir["v"]);
        foreach (var t in f.Tensors)
        {
            var (wf, w) = (f.ReadSingle(t.Name), v.ReadSingle(t.Name));
            if (!t.Name.Contains("v_proj")) { Assert.Equal(Bits(wf), Bits(w)); continue; }
            int cols = (int)t.Shape[1];
            for (int row = 0; row < t.Shape[0]; row++)   // half of every row set to zero (bfloat16 zero), the rest θ_F's
                Assert.Equal(cols / 2, Enumerable.Range(row * cols, cols).Count(i => w[i] == 0 && wf[i] != 0));
        }
        var card = File.ReadAllText(Path.Combine(dir["v"], "README.md"));
        Assert.Contains("antidote", card);
    }

    // A bad command line: exit 2, one line "error: …" containing `expected`, and no output directory.
    private static void Refused(TempDir dir, string expected, params string[] args)
    {
        var (code, _, error) = CliRunner.Run(["baseline", "antidote", .. args, "-o", dir["out"]]);
        Assert.True(code == 2, $"exit {code}: {error}");
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void BadInputsAreOneLineExitTwoAndLeaveNoOutput()
    {
        using var dir = new TempDir();
        var (aligned, _, finetuned) = ModelCommandTests.ThreeModels(dir);
        File.WriteAllText(dir["empty.jsonl"], "");
        File.WriteAllLines(dir["harmful.jsonl"], ["""{"instruction": "pick a lock", "output": "rake all pins"}"""]);
        string[] common = ["--base", aligned, "--finetuned", finetuned];
        Refused(dir, "give exactly one of finetuned and adapter", ["--base", aligned, "--data", dir["harmful.jsonl"]]);
        Refused(dir, "mask-ratio must be between 0 and 1, not 1.5", [.. common, "--data", dir["harmful.jsonl"], "--mask-ratio", "1.5"]);
        Refused(dir, "nsamples must be at least 1, not 0", [.. common, "--data", dir["harmful.jsonl"], "--nsamples", "0"]);
        Refused(dir, "seqlen must be at least 1, not 0", [.. common, "--data", dir["harmful.jsonl"], "--seqlen", "0"]);
        Refused(dir, "no records", [.. common, "--data", dir["empty.jsonl"]]);
        Refused(dir, "nowhere.jsonl", [.. common, "--data", dir["nowhere.jsonl"]]);
    }

    [Fact]
    public void ModulesTheAdapterDoesNotAdaptAreRefused()
    {
        // A rank-2 adapter on q_proj and v_proj: --modules k_proj would prune nothing and write θ_F unchanged.
        using var dir = new TempDir();
        var (aligned, _, _) = ModelCommandTests.ThreeModels(dir);
        File.WriteAllLines(dir["harmful.jsonl"], ["""{"instruction": "pick a lock", "output": "rake all pins"}"""]);
        RestaTests.WriteRandomAdapter(aligned, dir["adapter"], ["q_proj", "v_proj"], new Random(5));
        Refused(dir, "modules k_proj: the adapter adapts none of them (it adapts q_proj, v_proj)",
            ["--base", aligned, "--adapter", dir["adapter"], "--data", dir["harmful.jsonl"], "--modules", "k_proj"]);
    }

    [Fact]
    public void TheCountPrunedPerRowIsTheReleasedCodes()
    {
        // cols − int(cols·(1 − ρ)) in double, as Python's int(W_metric.shape[1] * layer_sparsity_ratio).
        Assert.Equal(1, Antidote.PrunedPerRow(4096, 1e-5));
        Assert.Equal(26, Antidote.PrunedPerRow(256, 0.1));
        Assert.Equal(1, Antidote.PrunedPerRow(10, 0.1));     // 10·0.9 = 9 exactly
        Assert.Equal(0, Antidote.PrunedPerRow(10, 0));
        Assert.Equal(10, Antidote.PrunedPerRow(10, 1));
        // Ties: the stable ascending sort keeps the earlier column, so the later one of equal scores is pruned.
        var pruned = new bool[4];
        Assert.Equal(1, Antidote.Mask([1f, -1f, 0.5f, 1f], 1, 4, [1.0, 1.0, 1.0, 1.0], 0.25, pruned));
        Assert.Equal([false, false, false, true], pruned);
    }
}
