using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Realign;
using Irr.Realign.Baselines;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>irr baseline resta (W = W_F + γ·v) against a naive element-by-element computation on tiny chat models.</summary>
public class RestaTests
{
    private static readonly string[] QVDown = ["q_proj", "v_proj", "down_proj"];

    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    // θ_A, θ_F (full) and the safety vector θ_A − θ_U of `modules`, all from the CLI.
    private static (string Aligned, string Finetuned, string Vector) Inputs(TempDir dir, string modules = "q_proj,v_proj,down_proj")
    {
        var (aligned, unaligned, finetuned) = ModelCommandTests.ThreeModels(dir);
        Ok(CliRunner.Run("safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", modules, "-o", dir["v.safetensors"]));
        return (aligned, finetuned, dir["v.safetensors"]);
    }

    // Round-to-nearest-even to bfloat16 (finite values), written out by hand.
    private static float RoundBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000u);
    }

    internal static float Round(float x, TensorDType dtype) => dtype switch
    {
        TensorDType.BF16 => RoundBf16(x),
        TensorDType.F16 => (float)(Half)x,
        _ => x,
    };

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    // Every tensor of the output against the naive expectation: W_F + γ·v on the targets, W_F elsewhere, rounded to the
    // output storage type (`dtype`, or the θ_F tensor's own type for keep).
    private static void AssertResta(string output, Func<string, float[]> thetaF, Func<string, TensorDType> storedAs, string vector,
        IReadOnlyCollection<string> modules, double gamma, TensorDType? dtype)
    {
        using var model = ModelDirectory.Open(output);
        using var v = SafetensorsFile.Open(vector);
        var targets = TargetModules.WeightNames(model.Config, modules.ToList()).ToHashSet();
        Assert.Equal(model.Config.ExpectedTensors().Select(t => t.Name), model.Tensors.Select(t => t.Name));
        foreach (var tensor in model.Tensors)
        {
            var type = dtype ?? storedAs(tensor.Name);
            Assert.Equal(type, tensor.DType);
            var wf = thetaF(tensor.Name);
            var expected = new float[wf.Length];
            if (targets.Contains(tensor.Name) && gamma != 0)
            {
                var vv = v.ReadSingle(tensor.Name);
                float g = (float)gamma;
                for (int i = 0; i < wf.Length; i++) expected[i] = Round(wf[i] + g * vv[i], type);
            }
            else
                for (int i = 0; i < wf.Length; i++) expected[i] = Round(wf[i], type);
            Assert.True(Bits(expected).SequenceEqual(Bits(model.ReadSingle(tensor.Name))), $"{tensor.Name} differs");
        }
    }

    [Theory]
    [InlineData(0.5, "keep")]
    [InlineData(-1.25, "f32")]
    [InlineData(2.0, "f16")]
    [InlineData(0.0, "keep")]
    public void AFullFineTuneGetsGammaTimesTheSafetyVectorBitForBit(double gamma, string dtype)
    {
        using var dir = new TempDir();
        var (aligned, finetuned, vector) = Inputs(dir);
        Ok(CliRunner.Run("baseline", "resta", "--base", aligned, "--finetuned", finetuned, "--safety-vector", vector,
            "--gamma", gamma.ToString(System.Globalization.CultureInfo.InvariantCulture), "--dtype", dtype, "-o", dir["out"]));
        using var f = ModelDirectory.Open(finetuned);
        var type = dtype == "keep" ? (TensorDType?)null : TensorDTypes.ParseOutput(dtype, "test");
        AssertResta(dir["out"], f.ReadSingle, n => f.Info(n).DType, vector, QVDown, gamma, type);
        Assert.True(File.Exists(Path.Combine(dir["out"], "tokenizer.json")));
        if (gamma == 0)
        {
            // γ = 0: θ_F's tensors exactly, bytes included.
            using var o = ModelDirectory.Open(dir["out"]);
            foreach (var t in f.Tensors) Assert.Equal(Bits(f.ReadSingle(t.Name)), Bits(o.ReadSingle(t.Name)));
        }
    }

    // A random rank-2 adapter (α = 4, scale 2) on `adapted` of `aligned`, float32, A and B uniform from `rng`.
    internal static void WriteRandomAdapter(string aligned, string output, string[] adapted, Random rng)
    {
        using var a = ModelDirectory.Open(aligned);
        var layers = TargetModules.WeightNames(a.Config, adapted).Select(n =>
        {
            var shape = a.Info(n).Shape;
            int outDim = (int)shape[0], inDim = (int)shape[1];
            return (n, Tensors.Reference.Uniform(rng, 2 * inDim), Tensors.Reference.Uniform(rng, outDim * 2), outDim, inDim);
        }).ToList();
        LoraAdapter.Write(output, LoraConfig.Create(2, 4, adapted, aligned), layers, TensorDType.F32, [aligned]);
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("keep")]
    public void ALoraFineTuneIsTheBasePlusTheMergedAdapterPlusGammaV(string dtype)
    {
        using var dir = new TempDir();
        var (aligned, _, vector) = Inputs(dir);
        // A random rank-2 adapter on q_proj and v_proj, α = 4 (scale 2).
        using var a = ModelDirectory.Open(aligned);
        string[] adapted = ["q_proj", "v_proj"];
        WriteRandomAdapter(aligned, dir["adapter"], adapted, new Random(11));

        Ok(CliRunner.Run("baseline", "resta", "--base", aligned, "--adapter", dir["adapter"], "--safety-vector", vector,
            "--gamma", "0.75", "--dtype", dtype, "-o", dir["out"]));

        // θ_F by hand: W_A + scale·B·A in float32, the k-sum and the scaled add fused as the GEMM kernel does.
        using var lora = SafetensorsFile.Open(Path.Combine(dir["adapter"], LoraAdapter.WeightsFile));
        float[] Merged(string name)
        {
            var w = a.ReadSingle(name);
            if (!adapted.Any(m => name.Contains(m, StringComparison.Ordinal))) return w;
            string module = "base_model.model." + name[..^".weight".Length];
            var la = lora.ReadSingle(module + ".lora_A.weight");
            var lb = lora.ReadSingle(module + ".lora_B.weight");
            int rows = (int)a.Info(name).Shape[0], cols = (int)a.Info(name).Shape[1];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    float acc = 0;
                    for (int k = 0; k < 2; k++) acc = MathF.FusedMultiplyAdd(lb[i * 2 + k], la[k * cols + j], acc);
                    w[i * cols + j] = MathF.FusedMultiplyAdd(acc, 2f, w[i * cols + j]);
                }
            return w;
        }
        var type = dtype == "keep" ? (TensorDType?)null : TensorDType.F32;
        AssertResta(dir["out"], Merged, n => a.Info(n).DType, vector, QVDown, 0.75, type);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], RestaReport.FileName)))!;
        Assert.Equal(Path.GetFullPath(dir["adapter"]), (string)report["inputs"]!["adapter"]!);
        Assert.Null(report["inputs"]!["finetuned"]);
    }

    [Fact]
    public void ModulesSelectASubsetAndTheReportRecordsWhatWasAdded()
    {
        using var dir = new TempDir();
        var (aligned, finetuned, vector) = Inputs(dir);
        var run = CliRunner.Run("baseline", "resta", "--base", aligned, "--finetuned", finetuned, "--safety-vector", vector,
            "--modules", "v_proj,q_proj", "--gamma", "0.3", "-o", dir["out"]);
        Ok(run);
        Assert.Contains("4 matrices (q_proj, v_proj)", run.Out);
        using var f = ModelDirectory.Open(finetuned);
        AssertResta(dir["out"], f.ReadSingle, n => f.Info(n).DType, vector, ["q_proj", "v_proj"], 0.3, null); // down_proj untouched

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], RestaReport.FileName)))!;
        Assert.Equal(Provenance.Version, (string)report["irr_version"]!);
        Assert.Equal("resta", (string)report["method"]!);
        Assert.Equal(Path.GetFullPath(aligned), (string)report["inputs"]!["base"]!);
        Assert.Equal(Path.GetFullPath(finetuned), (string)report["inputs"]!["finetuned"]!);
        Assert.Equal(Path.GetFullPath(vector), (string)report["inputs"]!["safety_vector"]!);
        Assert.Equal(0.3, (double)report["options"]!["gamma"]!);
        Assert.Equal(["q_proj", "v_proj"], report["options"]!["modules"]!.AsArray().Select(x => (string)x!));
        Assert.Equal("keep", (string)report["options"]!["dtype"]!);
        var matrices = report["matrices"]!.AsArray();
        Assert.Equal(4, matrices.Count);
        using var v = SafetensorsFile.Open(vector);
        foreach (var m in matrices)
        {
            string name = ModelConfig.LinearWeightName((int)m!["layer"]!, (string)m["module"]!);
            double norm = Math.Sqrt(v.ReadSingle(name).Sum(x => (double)x * x));
            double wf = Math.Sqrt(f.ReadSingle(name).Sum(x => (double)x * x));
            Assert.Equal(f.Info(name).ElementCount, (long)m["parameters"]!);
            Assert.Equal(norm, (double)m["vector_norm"]!, 1e-9);
            Assert.Equal(0.3 * norm, (double)m["added_norm"]!, 1e-9);
            Assert.Equal(wf, (double)m["finetuned_norm"]!, 1e-9);
            Assert.Equal(0.3 * norm / wf, (double)m["relative_change"]!, 1e-9);
        }
        Assert.Equal(4, (int)report["totals"]!["matrices"]!);
        Assert.Equal(2 * (256 + 128), (long)report["totals"]!["parameters"]!);

        // Without --modules: every module the vector has (here three).
        Ok(CliRunner.Run("baseline", "resta", "--base", aligned, "--finetuned", finetuned, "--safety-vector", vector, "-o", dir["all"]));
        var all = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["all"], RestaReport.FileName)))!;
        Assert.Equal(QVDown, all["options"]!["modules"]!.AsArray().Select(x => (string)x!));
        Assert.Equal(0.5, (double)all["options"]!["gamma"]!);
    }

    // A bad command line: exit 2, one line "error: …" containing `expected`, and no output directory.
    private static void Refused(TempDir dir, string expected, params string[] args)
    {
        var (code, _, error) = CliRunner.Run(["baseline", "resta", .. args, "-o", dir["out"]]);
        Assert.True(code == 2, $"exit {code}: {error}");
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.False(Directory.Exists(dir["out"]));
        Assert.Empty(Directory.GetDirectories(dir.Path, "out*"));
    }

    [Fact]
    public void BadInputsAreOneLineExitTwoAndLeaveNoOutput()
    {
        using var dir = new TempDir();
        var (aligned, finetuned, vector) = Inputs(dir, "q_proj");
        string[] common = ["--base", aligned, "--safety-vector", vector];
        Refused(dir, "give exactly one of finetuned and adapter", [.. common]);
        Refused(dir, "give exactly one of finetuned and adapter", [.. common, "--finetuned", finetuned, "--adapter", dir["nowhere"]]);
        Refused(dir, "gamma must be a finite number (in float32, as the weights are computed), not NaN", [.. common, "--finetuned", finetuned, "--gamma", "NaN"]);
        Refused(dir, "gamma must be a finite number (in float32, as the weights are computed), not 1E+39", [.. common, "--finetuned", finetuned, "--gamma", "1e39"]);
        Refused(dir, "gamma must be a finite number", [.. common, "--finetuned", finetuned, "--gamma", "Infinity"]);
        Refused(dir, "dtype must be keep, bf16, f16 or f32, not 'f8'", [.. common, "--finetuned", finetuned, "--dtype", "f8"]);
        Refused(dir, "'o_projection' is not one of", [.. common, "--finetuned", finetuned, "--modules", "o_projection"]);
        // The safety vector lacks a module that was asked for: the message names the missing tensors.
        Refused(dir, "the safety vector lacks 2 target weights: model.layers.0.self_attn.v_proj.weight, model.layers.1.self_attn.v_proj.weight",
            [.. common, "--finetuned", finetuned, "--modules", "q_proj,v_proj"]);

        // θ_F of another architecture (TinyModels' config: vocabulary 64, intermediate 40).
        string other = TinyModels.Create(dir["other"], seed: 4);
        Refused(dir, "does not share the architecture of", [.. common, "--finetuned", other]);
        // A safety vector of another architecture: its down_proj is [16, 40], the model's [16, 32].
        string otherU = TinyModels.Create(dir["other-u"], seed: 5);
        Ok(CliRunner.Run("safety-vector", "--aligned", other, "--unaligned", otherU, "--modules", "down_proj", "-o", dir["w.safetensors"]));
        Refused(dir, "is [16, 40] but the model's weight is [16, 32]", ["--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["w.safetensors"]]);
        // A safety vector without any linear weight of the model's names.
        CheckpointWriter.WriteFile(dir["foreign.safetensors"], [new TensorSpec("encoder.weight", TensorDType.F32, [2, 2])],
            new Dictionary<string, string> { ["format"] = "pt" }, w => w.Write("encoder.weight", new float[4]));
        Refused(dir, "the safety vector has no weight of q_proj", ["--base", aligned, "--finetuned", finetuned, "--safety-vector", dir["foreign.safetensors"]]);
    }

    [Fact]
    public void TheJobChecksItsOptionsAndARecipeWiresTheSafetyVectorAndTheModel()
    {
        var job = new RestaJob { Base = "/nonexistent/a", Finetuned = "/nonexistent/f", SafetyVector = "v", OutputPath = "/nonexistent/out" };
        job.Validate(); // nothing is read
        Assert.Equal(["/nonexistent/a", "/nonexistent/f", "v"], job.Inputs);
        Assert.Equal("baseline resta", job.Command);
        Assert.Equal("baseline resta: gamma must be a finite number (in float32, as the weights are computed), not -Infinity", Assert.Throws<IrrException>((job with { Gamma = double.NegativeInfinity }).Validate).Message);
        Assert.Equal("baseline resta: give exactly one of finetuned and adapter", Assert.Throws<IrrException>((job with { Finetuned = null }).Validate).Message);
        Assert.StartsWith("baseline resta: modules must be among", Assert.Throws<IrrException>((job with { Modules = ["lm_head"] }).Validate).Message);

        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m"]);
        File.WriteAllText(dir["p.json"], "[]");
        var graph = StepGraph.Plan(Recipe.Parse("""
            output: out
            steps:
              - safety-vector: {aligned: m, unaligned: m}
              - baseline resta: {base: m, finetuned: m, gamma: 0.5}
              - eval safety: {prompts: [p.json]}
            """, dir["recipe.yaml"]));
        var s = graph.Steps.ToDictionary(x => x.Id);
        Assert.Equal(dir["out/baseline-resta"], s["baseline-resta"].Output);
        Assert.Equal([dir["out/safety-vector.safetensors"]], s["baseline-resta"].Options.Single(o => o.Key == "safety-vector").Values);
        Assert.Equal([dir["out/baseline-resta"]], s["eval-safety"].Options.Single(o => o.Key == "model").Values);
    }
}
