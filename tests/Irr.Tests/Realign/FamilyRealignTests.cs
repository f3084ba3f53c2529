using Irr.IO;
using Irr.Model;
using Irr.Realign;
using Irr.Tests.IO;
using Irr.Tests.Model;

namespace Irr.Tests.Realign;

/// <summary>IRR on the newer families' modules: target modules per family, and OBS on Phi-3's fused matrices.</summary>
public class FamilyRealignTests
{
    [Fact]
    public void TheModulesOfAllAreTheFamilysAndAModuleItLacksIsNamed()
    {
        var phi3 = TransformerTests.ConfigOf("phi3");
        var qwen3 = TransformerTests.ConfigOf("qwen3");
        Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], TargetModules.For(phi3, TargetModules.All));
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], TargetModules.For(qwen3, TargetModules.Parse("all")));
        Assert.Equal("model.layers.1.self_attn.qkv_proj.weight", TargetModules.WeightNames(phi3, TargetModules.All).ElementAt(4));
        var e = Assert.Throws<IrrException>(() => TargetModules.WeightNames(phi3, ["q_proj"]).ToList());
        Assert.Equal("config.json: modules: 'q_proj' is not a linear module of phi3 (its modules: qkv_proj, o_proj, gate_up_proj, down_proj)", e.Message);
        Assert.Throws<IrrException>(() => TargetModules.For(qwen3, ["gate_up_proj"]));
        // One Hessian per input: Phi-3's fused projections are groups of their own.
        Assert.Equal([["qkv_proj"], ["o_proj"], ["gate_up_proj"], ["down_proj"]], Realigner.InputGroups(phi3));
        Assert.Equal([["q_proj", "k_proj", "v_proj"], ["o_proj"], ["gate_proj", "up_proj"], ["down_proj"]], Realigner.InputGroups(qwen3));
        // Norms are never targets (q_norm, k_norm, Gemma's four per layer).
        var gemma3 = TransformerTests.ConfigOf("gemma3");
        var targets = TargetModules.WeightNames(gemma3, TargetModules.All).ToHashSet();
        Assert.All(Enumerable.Range(0, gemma3.NumHiddenLayers).SelectMany(gemma3.NormWeightNames), n => Assert.DoesNotContain(n, targets));
        Assert.Equal(6, gemma3.NormWeightNames(0).Count());
    }

    [Theory]
    [InlineData("phi3")]     // fused projections
    [InlineData("qwen3")]    // q_norm, k_norm (same dimensions once head_dim is hidden / heads)
    [InlineData("gemma2")]   // Gemma's four norms per layer
    public void ModelsOfTheSameSizesButAnotherFamilysLayoutAreNotCombined(string variant)
    {
        var llama = TransformerTests.RandomParameters(TransformerTests.ConfigOf("llama"), seed: 1);
        var other = TransformerTests.ConfigOf(variant);
        other = ModelConfig.Parse(TransformerTests.Variant(other.Json.ToJsonString(), o => o["head_dim"] = 4), "other/config.json");
        var e = Assert.Throws<IrrException>(() => Architecture.RequireSame(llama, TransformerTests.RandomParameters(other, seed: 2)));
        Assert.Equal($"other/config.json: does not share the architecture of config.json: model_type {other.ModelType}, not llama", e.Message);
        Architecture.RequireSame(TransformerTests.RandomParameters(other, seed: 3), TransformerTests.RandomParameters(other, seed: 4), TargetModules.All);
    }

    [Fact]
    public void TheSharedGradientBuffersOfPhi3AreTheFusedMatrices()
    {
        var phi3 = TransformerTests.ConfigOf("phi3");
        var g = Gradients.SharedAcrossLayers(phi3, ["qkv_proj", "gate_up_proj"]);
        Assert.Equal((8 + 2 * 4) * 8, g["model.layers.0.self_attn.qkv_proj.weight"].Length);   // (q + 2 kv) × hidden
        Assert.Same(g["model.layers.0.mlp.gate_up_proj.weight"], g["model.layers.1.mlp.gate_up_proj.weight"]);
        Assert.Equal(2 * 12 * 8, g["model.layers.1.mlp.gate_up_proj.weight"].Length);
        Assert.Throws<ArgumentException>(() => Gradients.SharedAcrossLayers(phi3, ["q_proj"]));
    }

    [Theory]
    [InlineData("phi3")]
    [InlineData("gemma3")]
    public void TheFisherOfEveryModuleIsTheSquaredFiniteDifferenceGradient(string variant)
    {
        // One batch: F = (∂L/∂W)², with ∂L/∂W by central differences of the loss (double sums of the float32 model).
        var config = TransformerTests.ConfigOf(variant);
        var weights = TransformerTests.RandomParameters(config, seed: 4);
        (int[], int[])[] examples = [([1, 5, 2, 9, 3], [-100, -100, 2, 9, 3]), ([7, 4, 4, 6], [-100, 4, 4, 6])];
        var fisher = Fisher.Compute(weights, examples, TargetModules.All, batchSize: 2);
        Assert.Equal(TargetModules.WeightNames(config, TargetModules.All).Order(), fisher.Keys.Order());
        var batch = Batch.Create(examples.Select(e => (IReadOnlyList<int>)e.Item1).ToList(), examples.Select(e => (IReadOnlyList<int>)e.Item2).ToList());
        var model = new Transformer(weights);
        var rng = new Random(5);
        const float h = 1e-2f;
        int large = 0, probes = 0;
        foreach (string name in fisher.Keys)
            for (int probe = 0; probe < 3; probe++)
            {
                var w = weights[name];
                int i = rng.Next(w.Length);
                float saved = w[i];
                w[i] = saved + h;
                double plus = model.Loss(batch).Loss;
                w[i] = saved - h;
                double minus = model.Loss(batch).Loss;
                w[i] = saved;
                double g = (plus - minus) / (2 * h);
                probes++;
                if (Math.Abs(g) > 1e-2) large++;
                Assert.True(Math.Abs(Math.Sqrt(fisher[name][i]) - Math.Abs(g)) <= 2e-4 + 0.02 * Math.Abs(g), $"{variant} {name}[{i}]: √F = {Math.Sqrt(fisher[name][i])}, |finite difference| = {Math.Abs(g)}");
            }
        Assert.True(large >= probes / 2, $"{large} of {probes} probes have a gradient above 0.01");
    }

    /// <summary>
    /// Phi-3's qkv_proj of layer 0 realigned as one matrix, equal to IRR-SPEC step 3 written naively in double precision:
    /// H = (2/N) Σ x xᵀ of the normed embeddings (computed here), the removal mask chosen over the whole fused matrix by
    /// the spec's rule (<see cref="RemovalStrategyTests.Naive"/>: one block, as blocksize 128 ≥ its 8 columns), and the
    /// OBS update with the explicit inverse (<see cref="ObsRecalibratorTests.ReferenceObs"/>).
    /// </summary>
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    public void Phi3sFusedQkvIsRealignedAsOneMatrixAsTheSpecSays(double sparsity)
    {
        using var dir = new TempDir();
        var config = TransformerTests.ConfigOf("phi3");   // hidden 8, 2 heads of 4, 1 KV head: qkv_proj is 16 × 8
        var wa = TransformerTests.RandomParameters(config, seed: 1);
        var wf = TransformerTests.RandomParameters(config, seed: 2);
        string name = ModelConfig.LinearWeightName(0, "qkv_proj");
        var (rows, cols) = config.LinearShape("qkv_proj");
        Assert.Equal((16, 8), (rows, cols));
        var rng = new Random(3);
        var values = (Func<float> draw) => TargetModules.WeightNames(config, ["qkv_proj"])
            .ToDictionary(n => n, n => Enumerable.Range(0, rows * cols).Select(_ => draw()).ToArray());
        var v = values(() => (float)(rng.NextDouble() - 0.5));
        var f = values(() => rng.Next(8) / 7f);   // few values: ties between q, k and v rows are decided by position
        Fisher.Write(dir["v.safetensors"], config, ["qkv_proj"], v, new Dictionary<string, string> { ["format"] = "pt" });
        Fisher.Write(dir["f.safetensors"], config, ["qkv_proj"], f, new Dictionary<string, string> { ["format"] = "pt" });
        using var vFile = SafetensorsFile.Open(dir["v.safetensors"]);
        using var fFile = SafetensorsFile.Open(dir["f.safetensors"]);
        int[][] calibration = [[1, 5, 2, 9, 3, 3], [7, 4, 10, 0], [6, 6, 8, 2, 1]];

        var output = new Dictionary<string, float[]>();
        var options = new RealignOptions { Modules = ["qkv_proj"], OutputDType = TensorDType.F32, Obs = new ObsOptions { Strategy = RemovalMethods.Irr.Create(sparsity) } };
        new Realigner(wa, wf, vFile, fFile, options).Run(calibration, (n, x) => output[n] = x);

        // x = RMSNorm(embedding) · input_layernorm (Phi-3: no embedding scale, no norm offset); H = (2/N) Σ x xᵀ
        var embed = wf["model.embed_tokens.weight"];
        var norm = wf["model.layers.0.input_layernorm.weight"];
        var h = new double[cols * cols];
        int tokens = calibration.Sum(s => s.Length);
        foreach (int token in calibration.SelectMany(s => s))
        {
            var e = Enumerable.Range(0, cols).Select(j => (double)embed[token * cols + j]).ToArray();
            double rstd = 1 / Math.Sqrt(e.Sum(x => x * x) / cols + config.RmsNormEps);
            var x = Enumerable.Range(0, cols).Select(j => e[j] * rstd * norm[j]).ToArray();
            for (int a = 0; a < cols; a++)
                for (int b = 0; b < cols; b++) h[a * cols + b] += 2.0 / tokens * x[a] * x[b];
        }
        var delta = wf[name].Zip(wa[name], (x, y) => x - y).ToArray();                 // Δ = W_F − W_A in float32
        var mask = RemovalStrategyTests.Naive("irr", sparsity, delta, v[name], f[name], rows, cols, 0, cols);
        var updated = ObsRecalibratorTests.ReferenceObs(Array.ConvertAll(h, x => (float)x), delta, mask, rows, cols, 0.01, recalibrate: true);
        double scale = delta.Max(Math.Abs);
        for (int i = 0; i < rows * cols; i++)
        {
            double expected = wa[name][i] + updated[i];
            Assert.True(Math.Abs(output[name][i] - expected) <= 1e-5 * scale, $"s = {sparsity}: W[{i / cols},{i % cols}] = {output[name][i]}, naive {expected}");
        }
        // The removals fall in the q, k and v rows alike: the fused matrix is one module, ranked as one.
        int qRows = config.NumAttentionHeads * config.HeadDim, kvRows = config.NumKeyValueHeads * config.HeadDim;
        foreach (var (first, count) in new[] { (0, qRows), (qRows, kvRows), (qRows + kvRows, kvRows) })
            Assert.Contains(true, mask.AsSpan(first * cols, count * cols).ToArray());
        if (sparsity > 0) Assert.Contains(false, mask.Where((_, i) => Math.Sign(delta[i]) != Math.Sign(v[name][i])));
        // Only the target changed.
        foreach (var (n, _) in config.ExpectedTensors().Where(t => !t.Name.EndsWith("qkv_proj.weight", StringComparison.Ordinal)))
            Assert.Equal(wf[n], output[n]);
    }
}
