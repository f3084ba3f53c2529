using System.Globalization;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Realign;
using Irr.Realign.Baselines;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>irr baseline interpolate (θ = θ_A + α·(θ_F − θ_A)) against a naive element-by-element computation and a float64 PyTorch reference.</summary>
public class InterpolateTests
{
    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    private static string Family(string name) => Text.Fixtures.Local($"torch/families/{name}");

    // Every tensor of the output against the naive expectation: on the interpolated tensors Δ = W_F − W_A, α·Δ and
    // W_A + α·Δ each rounded to float32 (W_A where α = 0, W_F where α = 1); W_F elsewhere; then rounded to the output type.
    private static void AssertInterpolated(string output, IWeightSource thetaF, IWeightSource thetaA, Func<string, bool> interpolated,
        double alpha, TensorDType? dtype)
    {
        using var model = ModelDirectory.Open(output);
        Assert.Equal(model.Config.ExpectedTensors().Select(t => t.Name), model.Tensors.Select(t => t.Name));
        float a = (float)alpha;
        foreach (var tensor in model.Tensors)
        {
            var type = dtype ?? thetaF.StorageType(tensor.Name);
            Assert.Equal(type, tensor.DType);
            float[] f = [], w = [];
            var wf = thetaF.Load(tensor.Name, ref f).ToArray();
            var wa = thetaA.Load(tensor.Name, ref w).ToArray();
            var expected = new float[wf.Length];
            for (int i = 0; i < wf.Length; i++)
            {
                float delta = wf[i] - wa[i], step = a * delta, value = wa[i] + step;
                float x = !interpolated(tensor.Name) || alpha == 1 ? wf[i] : alpha == 0 ? wa[i] : value;
                expected[i] = RestaTests.Round(x, type);
            }
            Assert.True(Bits(expected).SequenceEqual(Bits(model.ReadSingle(tensor.Name))), $"{tensor.Name} differs");
        }
    }

    [Theory]
    [InlineData(0.5, "keep")]
    [InlineData(0.3, "f32")]
    [InlineData(-0.25, "f16")]
    [InlineData(0.0, "keep")]
    [InlineData(1.0, "keep")]
    public void AFullFineTuneIsInterpolatedOnEveryTensor(double alpha, string dtype)
    {
        using var dir = new TempDir();
        var (aligned, _, finetuned) = ModelCommandTests.ThreeModels(dir);
        Ok(CliRunner.Run("baseline", "interpolate", "--base", aligned, "--finetuned", finetuned,
            "--alpha", alpha.ToString(CultureInfo.InvariantCulture), "--dtype", dtype, "-o", dir["out"]));
        using var f = CheckpointWeights.Open(finetuned);
        using var a = CheckpointWeights.Open(aligned);
        var type = dtype == "keep" ? (TensorDType?)null : TensorDTypes.ParseOutput(dtype, "test");
        AssertInterpolated(dir["out"], f, a, _ => true, alpha, type);
        Assert.True(File.Exists(Path.Combine(dir["out"], "tokenizer.json")));
    }

    [Theory]
    [InlineData("qwen3", 0.4)]
    [InlineData("phi3", 0.7)]
    public void ALoraFineTuneOfAFamilyIsInterpolatedOnTheMergedWeights(string variant, double alpha)
    {
        using var dir = new TempDir();
        string @base = Family(variant), adapter = Family(variant + "-lora");
        Ok(CliRunner.Run("baseline", "interpolate", "--base", @base, "--adapter", adapter,
            "--alpha", alpha.ToString(CultureInfo.InvariantCulture), "-o", dir["out"]));
        // θ_F is θ_A with the adapter merged in float32 (RestaTests checks that merge against a naive one).
        using var f = CheckpointWeights.Open(@base, adapter);
        using var a = CheckpointWeights.Open(@base);
        AssertInterpolated(dir["out"], f, a, _ => true, alpha, null);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], InterpolateReport.FileName)))!;
        Assert.Equal("interpolate", (string)report["method"]!);
        Assert.Equal(alpha, (double)report["options"]!["alpha"]!);
        Assert.Equal(f.Config.ExpectedTensors().Count(), (int)report["totals"]!["tensors"]!);
    }

    [Fact]
    public void ModulesRestrictTheInterpolationToThoseWeights()
    {
        using var dir = new TempDir();
        var (aligned, _, finetuned) = ModelCommandTests.ThreeModels(dir);
        var run = CliRunner.Run("baseline", "interpolate", "--base", aligned, "--finetuned", finetuned, "--modules", "down_proj,q_proj",
            "--alpha", "0.25", "-o", dir["out"]);
        Ok(run);
        Assert.Contains("α = 0.25: 4 tensors interpolated", run.Out);
        using var f = CheckpointWeights.Open(finetuned);
        using var a = CheckpointWeights.Open(aligned);
        var targets = TargetModules.WeightNames(f.Config, ["q_proj", "down_proj"]).ToHashSet();
        AssertInterpolated(dir["out"], f, a, targets.Contains, 0.25, null);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], InterpolateReport.FileName)))!;
        Assert.Equal(["q_proj", "down_proj"], report["options"]!["modules"]!.AsArray().Select(x => (string)x!));
        Assert.Contains("interpolate", File.ReadAllText(Path.Combine(dir["out"], "README.md")));
    }

    [Fact]
    public void BadInputsAreOneLineExitTwoAndLeaveNoOutput()
    {
        using var dir = new TempDir();
        var (aligned, _, finetuned) = ModelCommandTests.ThreeModels(dir);
        foreach (var (expected, args) in new (string, string[])[]
        {
            ("give exactly one of finetuned and adapter", ["--base", aligned]),
            ("alpha must be a finite number (in float32, as the weights are computed), not NaN", ["--base", aligned, "--finetuned", finetuned, "--alpha", "NaN"]),
            ("alpha must be a finite number", ["--base", aligned, "--finetuned", finetuned, "--alpha", "1e39"]),
            ("does not share the architecture of", ["--base", aligned, "--finetuned", TinyModels.Create(dir["other"], seed: 4)]),
        })
        {
            var (code, _, error) = CliRunner.Run(["baseline", "interpolate", .. args, "-o", dir["out"]]);
            Assert.True(code == 2, $"exit {code}: {error}");
            var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(lines);
            Assert.Contains(expected, lines[0]);
            Assert.False(Directory.Exists(dir["out"]));
        }
    }

    public static TheoryData<int> Float64Cases() => [0, 1, 2];

    // The interpolated model of a LoRA fine-tune against tests/fixtures/interpolate/reference.json (make_interpolate.py,
    // float64 PyTorch written from the paper and transformers' modeling code): every next-token log-probability of
    // three chat records through irr score, and every target weight's sum and sum of squares.
    [Theory]
    [MemberData(nameof(Float64Cases))]
    public void TheInterpolatedModelEqualsTheFloat64Reference(int index)
    {
        var reference = JsonNode.Parse(File.ReadAllText(Text.Fixtures.Local("interpolate/reference.json")))!;
        var c = reference["cases"]![index]!;
        string variant = (string)c["variant"]!;
        double alpha = (double)c["alpha"]!;
        using var dir = new TempDir();
        string model = AntidoteTests.Copy(dir, variant); // with the byte-level test tokenizer and chat template
        Ok(CliRunner.Run("baseline", "interpolate", "--base", model, "--adapter", Family(variant + "-lora"), "--dtype", "f32",
            "--alpha", alpha.ToString("R", CultureInfo.InvariantCulture), "-o", dir["out"]));
        File.WriteAllLines(dir["records.jsonl"], reference["records"]!.AsArray().Select(r => r!.ToJsonString()));
        Ok(CliRunner.Run("score", "--model", dir["out"], "--data", dir["records.jsonl"], "-o", dir["scores.json"]));
        var scores = JsonNode.Parse(File.ReadAllText(dir["scores.json"]))!["scores"]!.AsArray();
        for (int r = 0; r < scores.Count; r++)
        {
            var ids = scores[r]!["input_ids"]!.AsArray().Select(x => (int)x!).ToArray();
            Assert.Equal(reference["input_ids"]![r]!.AsArray().Select(x => (int)x!), ids);
            var labels = scores[r]!["labels"]!.AsArray().Select(x => (int)x!).ToArray();
            var expected = c["logprobs"]![r]!.AsArray().Select(x => (double)x!).Where((_, t) => labels[t + 1] != -100).ToArray();
            var actual = scores[r]!["token_logprobs"]!.AsArray().Select(x => (double)x!).ToArray();
            Assert.Equal(expected.Length, actual.Length);
            for (int t = 0; t < expected.Length; t++) Assert.True(Math.Abs(expected[t] - actual[t]) < 1e-4, $"record {r}, token {t}: {actual[t]} against {expected[t]}");
        }
        using var output = ModelDirectory.Open(dir["out"]);
        foreach (var (name, sums) in c["tensors"]!.AsObject())
        {
            var w = output.ReadSingle(name);
            double sum = w.Sum(x => (double)x), squares = w.Sum(x => (double)x * x);
            Assert.Equal((double)sums![0]!, sum, 1e-6 * w.Length);
            Assert.Equal((double)sums[1]!, squares, 1e-5 * Math.Max(1, (double)sums[1]!));
        }
    }
}
