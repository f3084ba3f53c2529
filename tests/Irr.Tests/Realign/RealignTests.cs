using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Realign;
using Irr.Tests.IO;
using Irr.Tests.Model;

namespace Irr.Tests.Realign;

/// <summary>Safety vector, Fisher and the layer-sequential realignment on tiny random models.</summary>
public class RealignTests
{
    private static readonly IReadOnlyList<string> QV = ["q_proj", "v_proj"];

    // θ_A, and θ_F = θ_A + small random perturbations of every tensor (or of `only` tensors), both bf16 on disk.
    private static (string Aligned, string Finetuned) Models(TempDir dir, double scale = 0.02, Func<string, bool>? only = null)
    {
        string a = TinyModels.Create(dir["aligned"], seed: 1);
        using var source = CheckpointWeights.Open(a);
        var perturbed = ParameterSet.LoadAll(source);
        var rng = new Random(2);
        foreach (var (name, values) in perturbed.Tensors)
            if (only?.Invoke(name) ?? true)
                for (int i = 0; i < values.Length; i++) values[i] += (float)((rng.NextDouble() * 2 - 1) * scale);
        perturbed.Save(dir["finetuned"], TensorDType.BF16, a);
        return (a, dir["finetuned"]);
    }

    private static string VectorFile(TempDir dir, string name, ModelConfig config, IReadOnlyList<string> modules, Func<string, int, float> value)
    {
        var values = TargetModules.WeightNames(config, modules).ToDictionary(n => n, n =>
        {
            long len = config.ExpectedTensors().First(t => t.Name == n).Shape.Aggregate(1L, (x, y) => x * y);
            return Enumerable.Range(0, (int)len).Select(i => value(n, i)).ToArray();
        });
        Fisher.Write(dir[name], config, modules, values, new Dictionary<string, string> { ["format"] = "pt" });
        return dir[name];
    }

    private static List<int[]> Calibration(int count, int length, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => rng.Next(64)).ToArray()).ToList();
    }

    private static Dictionary<string, float[]> Run(Realigner realigner, IReadOnlyList<int[]> calibration)
    {
        var output = new Dictionary<string, float[]>();
        realigner.Run(calibration, (name, values) => output[name] = values);
        return output;
    }

    [Fact]
    public void SafetyVectorIsAlignedMinusUnaligned()
    {
        using var dir = new TempDir();
        var (a, f) = Models(dir);
        using var wa = CheckpointWeights.Open(a);
        using var wu = CheckpointWeights.Open(f);
        SafetyVector.Compute(wa, wu, QV, dir["v.safetensors"], new Dictionary<string, string> { ["format"] = "pt" });
        using var v = SafetensorsFile.Open(dir["v.safetensors"]);
        Assert.Equal(2 * 2, v.Tensors.Count);
        foreach (string name in TargetModules.WeightNames(wa.Config, QV))
        {
            float[] s1 = [], s2 = [];
            var expected = wa.Load(name, ref s1).ToArray().Zip(wu.Load(name, ref s2).ToArray(), (x, y) => x - y).ToArray();
            Assert.Equal(expected, v.ReadSingle(name));
            Assert.Equal(TensorDType.F32, v.Get(name).DType);
        }
    }

    [Fact]
    public void FisherIsTheMeanOfSquaredBatchGradients()
    {
        using var dir = new TempDir();
        using var weights = CheckpointWeights.Open(TinyModels.Create(dir["m"]));
        var rng = new Random(3);
        var examples = Enumerable.Range(0, 5).Select(i =>
        {
            var tokens = Enumerable.Range(0, 4 + i).Select(_ => rng.Next(64)).ToArray();
            var labels = tokens.Select((t, k) => k < 2 ? -100 : t).ToArray();
            return (tokens, labels);
        }).ToList();
        var fisher = Fisher.Compute(weights, examples, QV, batchSize: 2);

        // Reference: per batch (file order, b = 2: 3 batches), the full gradient of the batch's mean loss
        // from the tested backward pass, squared, averaged over the batches.
        var names = TargetModules.WeightNames(weights.Config, QV).ToList();
        var expected = names.ToDictionary(n => n, n => new double[fisher[n].Length]);
        var model = new Transformer(weights);
        foreach (var chunk in examples.Chunk(2))
        {
            var g = Gradients.For(weights.Config, names);
            model.ForwardBackward(Batch.Create(chunk.Select(e => (IReadOnlyList<int>)e.tokens).ToList(), chunk.Select(e => (IReadOnlyList<int>)e.labels).ToList()), g);
            foreach (string n in names) for (int i = 0; i < g[n].Length; i++) expected[n][i] += (double)g[n][i] * g[n][i] / 3;
        }
        foreach (string n in names)
            for (int i = 0; i < fisher[n].Length; i++)
                Assert.True(Math.Abs(fisher[n][i] - expected[n][i]) <= 1e-6 * expected[n][i] + 1e-12, $"{n}[{i}]: {fisher[n][i]} vs {expected[n][i]}");
        Assert.Contains(fisher.Values, f => f.Any(x => x > 0));

        var unlabelled = new List<(int[], int[])> { ([1, 2, 3], [-100, -100, -100]) };
        Assert.Contains("no labelled token", Assert.Throws<IrrException>(() => Fisher.Compute(weights, unlabelled, QV, 1)).Message);
    }

    [Fact]
    public void StreamingAndInMemoryGiveIdenticalOutputs()
    {
        using var dir = new TempDir();
        var (a, f) = Models(dir);
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        var rng = new Random(4);
        string v = VectorFile(dir, "v.safetensors", wa.Config, QV, (_, _) => (float)(rng.NextDouble() * 2 - 1));
        string fi = VectorFile(dir, "f.safetensors", wa.Config, QV, (_, _) => (float)rng.NextDouble());
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        var options = new RealignOptions { Modules = QV, OutputDType = TensorDType.BF16, Obs = new ObsOptions { BlockSize = 4 }, CalibrationBatchSize = 2 };
        var calibration = Calibration(5, 9, seed: 5);
        var streamed = Run(new Realigner(wa, wf, vFile, fFile, options), calibration);
        var inMemory = Run(new Realigner(ParameterSet.LoadAll(wa), ParameterSet.LoadAll(wf), vFile, fFile, options), calibration);
        Assert.Equal(streamed.Keys, inMemory.Keys);
        foreach (var (name, values) in streamed) Assert.Equal(values, inMemory[name]);
        // Something was edited, and non-target tensors are θ_F's.
        Assert.NotEqual(wf.Model.ReadSingle("model.layers.0.self_attn.q_proj.weight"), streamed["model.layers.0.self_attn.q_proj.weight"]);
        Assert.Equal(wf.Model.ReadSingle("model.layers.1.mlp.up_proj.weight"), streamed["model.layers.1.mlp.up_proj.weight"]);
    }

    [Fact]
    public void AnAdapterAndThePreMergedModelGiveIdenticalOutputs()
    {
        using var dir = new TempDir();
        string a = TinyModels.Create(dir["aligned"], seed: 1);
        var rng = new Random(6);
        var config = LoraConfig.Create(2, 4, QV, a);
        var layers = TargetModules.WeightNames(ModelConfig.Parse(TinyModels.LlamaConfig, "c"), QV).Select(n =>
        {
            int outDim = n.Contains("q_proj") ? 16 : 8;
            return (n, Tensors.Reference.Uniform(rng, 2 * 16), Tensors.Reference.Uniform(rng, outDim * 2), outDim, 16);
        }).ToList();
        LoraAdapter.Write(dir["adapter"], config, layers, TensorDType.F32, [a]);
        using var merged = CheckpointWeights.Open(a, dir["adapter"]);
        ParameterSet.LoadAll(merged).Save(dir["merged"], TensorDType.F32, a); // θ_A + s·B·A in float32, not rounded

        using var wa = CheckpointWeights.Open(a);
        using var wm = CheckpointWeights.Open(dir["merged"]);
        string v = VectorFile(dir, "v.safetensors", wa.Config, QV, (_, i) => (i % 3) - 1);
        string fi = VectorFile(dir, "f.safetensors", wa.Config, QV, (_, i) => (i * 7919 % 101) / 101f);
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        var options = new RealignOptions { Modules = QV, OutputDType = TensorDType.F32, Obs = new ObsOptions { BlockSize = 8, Strategy = RemovalMethods.Irr.Create(0.3) } };
        var calibration = Calibration(4, 7, seed: 7);
        var viaAdapter = Run(new Realigner(wa, merged, vFile, fFile, options), calibration);
        var viaMerged = Run(new Realigner(wa, wm, vFile, fFile, options), calibration);
        foreach (var (name, values) in viaAdapter) Assert.Equal(values, viaMerged[name]);
    }

    [Fact]
    public void EachInputGroupHasItsOwnHessian()
    {
        // Every Hessian of a layer is taken before any of its edits, so layer 0's o_proj (and down_proj) come out the same
        // whether or not q/k/v and gate/up are realigned in the same run: four groups, three of them reading width d,
        // must not share an accumulator.
        using var dir = new TempDir();
        var (a, f) = Models(dir);
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        string v = VectorFile(dir, "v.safetensors", wa.Config, TargetModules.All, (_, i) => (i % 3) - 1);
        string fi = VectorFile(dir, "f.safetensors", wa.Config, TargetModules.All, (_, i) => (i * 7919 % 101) / 101f);
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        RealignOptions Options(IReadOnlyList<string> modules) => new() { Modules = modules, OutputDType = TensorDType.F32, Obs = new ObsOptions { BlockSize = 8 } };
        var calibration = Calibration(3, 6, seed: 5);
        var all = Run(new Realigner(wa, wf, vFile, fFile, Options(TargetModules.All)), calibration);
        foreach (string module in new[] { "o_proj", "down_proj" })
        {
            string name = ModelConfig.LinearWeightName(0, module);
            var alone = Run(new Realigner(wa, wf, vFile, fFile, Options([module])), calibration);
            Assert.NotEqual(wf.Model.ReadSingle(name), alone[name]);   // it was realigned
            Assert.Equal(alone[name], all[name]);
        }
    }

    [Fact]
    public void FullSparsityOrNoConflictsReturnsTheFineTunedModelExactly()
    {
        using var dir = new TempDir();
        var (a, f) = Models(dir);
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        var names = TargetModules.WeightNames(wa.Config, TargetModules.All).ToList();
        // v with the sign of Δ everywhere: no conflicts.
        var deltas = names.ToDictionary(n => n, n => wf.Model.ReadSingle(n).Zip(wa.Model.ReadSingle(n), (x, y) => x - y).ToArray());
        string v = VectorFile(dir, "v.safetensors", wa.Config, TargetModules.All, (n, i) => deltas[n][i] * 2);
        string fi = VectorFile(dir, "f.safetensors", wa.Config, TargetModules.All, (_, i) => i % 5);
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        var calibration = Calibration(3, 6, seed: 8);
        foreach (var options in new[]
        {
            new RealignOptions(),                                                       // no conflicts
            new RealignOptions { Obs = new ObsOptions { Strategy = RemovalMethods.Irr.Create(1) } },               // s = 1 keeps every candidate
        })
        {
            var output = Run(new Realigner(wa, wf, vFile, fFile, options), calibration);
            foreach (var (name, values) in output) Assert.Equal(wf.Model.ReadSingle(name), values);
        }
        // s = 1 with conflicts too: a random v.
        var rng = new Random(9);
        string v2 = VectorFile(dir, "v2.safetensors", wa.Config, TargetModules.All, (_, _) => (float)(rng.NextDouble() - 0.5));
        using var v2File = SafetensorsFile.Open(v2);
        var kept = Run(new Realigner(wa, wf, v2File, fFile, new RealignOptions { Obs = new ObsOptions { Strategy = RemovalMethods.Irr.Create(1) } }), calibration);
        foreach (var (name, values) in kept) Assert.Equal(wf.Model.ReadSingle(name), values);
    }

    [Fact]
    public void WithoutRecalibrationRemovedDeltasAreAlignedAndTheRestFineTunedExactly()
    {
        using var dir = new TempDir();
        var (a, f) = Models(dir);
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        var rng = new Random(10);
        string v = VectorFile(dir, "v.safetensors", wa.Config, QV, (_, _) => (float)(rng.NextDouble() * 2 - 1));
        string fi = VectorFile(dir, "f.safetensors", wa.Config, QV, (_, _) => 1f);
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        var output = Run(new Realigner(wa, wf, vFile, fFile, new RealignOptions { Modules = QV, Obs = new ObsOptions { Recalibrate = false } }), Calibration(3, 6, 11));
        int removed = 0, kept = 0;
        foreach (string name in TargetModules.WeightNames(wa.Config, QV))
        {
            var (wA, wF, vv, o) = (wa.Model.ReadSingle(name), wf.Model.ReadSingle(name), vFile.ReadSingle(name), output[name]);
            for (int i = 0; i < o.Length; i++)
            {
                bool conflict = Math.Sign(wF[i] - wA[i]) != Math.Sign(vv[i]);
                Assert.Equal(conflict ? wA[i] : wF[i], o[i]);
                if (conflict) removed++; else kept++;
            }
        }
        Assert.True(removed > 0 && kept > 0);
    }

    [Fact]
    public void ADryRunCountsWhatTheUncompensatedRunRemoves()
    {
        using var dir = new TempDir();
        var (a, f) = Models(dir);
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        var rng = new Random(12);
        string v = VectorFile(dir, "v.safetensors", wa.Config, TargetModules.All, (_, _) => (float)(rng.NextDouble() * 2 - 1));
        string fi = VectorFile(dir, "f.safetensors", wa.Config, TargetModules.All, (_, _) => (float)rng.NextDouble());
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        var options = new RealignOptions { Obs = new ObsOptions { Strategy = RemovalMethods.Irr.Create(0.2), Recalibrate = false, BlockSize = 8 } };
        var dry = new Realigner(wa, wf, vFile, fFile, options).Identify();
        var real = new Realigner(wa, wf, vFile, fFile, options).Run(Calibration(3, 6, 13), (_, _) => { });
        Assert.Equal(real.Modules.Select(m => (m.Layer, m.Module, m.Conflicts, m.Removed)), dry.Modules.Select(m => (m.Layer, m.Module, m.Conflicts, m.Removed)));
        Assert.Equal(2 * 7, dry.Modules.Count);
        Assert.All(dry.Modules, m => Assert.InRange(m.RemovedPercent, 1, 99));
    }

    [Fact]
    public void BadInputsAreNamed()
    {
        using var dir = new TempDir();
        var (a, f) = Models(dir);
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        string vq = VectorFile(dir, "vq.safetensors", wa.Config, ["q_proj"], (_, _) => 1f);
        using var vqFile = SafetensorsFile.Open(vq);
        var e = Assert.Throws<IrrException>(() => new Realigner(wa, wf, vqFile, vqFile, new RealignOptions { Modules = QV }));
        Assert.Contains("lacks 2 target weights: model.layers.0.self_attn.v_proj.weight, model.layers.1.self_attn.v_proj.weight", e.Message);

        // A Fisher with the wrong shape: computed for a model with another intermediate size.
        string wide = TinyModels.Create(dir["wide"], TinyModels.LlamaConfig.Replace("\"intermediate_size\": 40", "\"intermediate_size\": 48"));
        using var ww = CheckpointWeights.Open(wide);
        string fw = VectorFile(dir, "fw.safetensors", ww.Config, ["down_proj"], (_, _) => 1f);
        string vd = VectorFile(dir, "vd.safetensors", wa.Config, ["down_proj"], (_, _) => 1f);
        using var fwFile = SafetensorsFile.Open(fw);
        using var vdFile = SafetensorsFile.Open(vd);
        e = Assert.Throws<IrrException>(() => new Realigner(wa, wf, vdFile, fwFile, new RealignOptions { Modules = ["down_proj"] }));
        Assert.Contains("tensor 'model.layers.0.mlp.down_proj.weight' is [16, 48] but the model's weight is [16, 40]", e.Message);
        Assert.Contains("does not share the architecture", Assert.Throws<IrrException>(() => new Realigner(wa, ww, vdFile, vdFile, new RealignOptions { Modules = ["down_proj"] })).Message);

        // NaN in the fine-tuned model's target weight.
        var poisoned = ParameterSet.LoadAll(wf);
        poisoned["model.layers.1.self_attn.q_proj.weight"][5] = float.NaN;
        string vqv = VectorFile(dir, "vqv.safetensors", wa.Config, QV, (_, _) => 1f);
        using var vqvFile = SafetensorsFile.Open(vqv);
        e = Assert.Throws<IrrException>(() => Run(new Realigner(wa, poisoned, vqvFile, vqvFile, new RealignOptions { Modules = QV }), Calibration(2, 4, 14)));
        Assert.Contains("tensor 'model.layers.1.self_attn.q_proj.weight' has a non-finite value", e.Message);
    }

    [Fact]
    public void AnAdapterThatUntiesATiedBaseGivesARealignedModelWithBothTensors()
    {
        // θ_A tied; θ_F = θ_A + an adapter with q/v LoRA and a trained embedding copy (modules_to_save: [embed_tokens]).
        // As PEFT computes θ_F, the head keeps θ_A's embedding; IRR copies both from θ_F, untied (IRR-SPEC: non-targets from θ_F).
        using var dir = new TempDir();
        string a = TinyModels.Create(dir["aligned"], AdapterFiles.TinyConfig(tied: true), TensorDType.F32);
        var embed = AdapterFiles.Random(3, 64 * 16);
        var tensors = new List<(string, long[], float[])> { ("base_model.model.model.embed_tokens.weight", [64, 16], embed) };
        var rng = new Random(4);
        foreach (string n in TargetModules.WeightNames(ModelConfig.Parse(TinyModels.LlamaConfig, "c"), QV))
        {
            string module = "base_model.model." + n[..^".weight".Length];
            int outDim = n.Contains("q_proj") ? 16 : 8;
            tensors.Add((module + ".lora_A.weight", [2, 16], Tensors.Reference.Uniform(rng, 2 * 16)));
            tensors.Add((module + ".lora_B.weight", [outDim, 2], Tensors.Reference.Uniform(rng, outDim * 2)));
        }
        AdapterFiles.Write(dir["adapter"], """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj","v_proj"],"modules_to_save":["embed_tokens"]}""", tensors);
        using var wa = CheckpointWeights.Open(a);
        using var theta = CheckpointWeights.Open(a, dir["adapter"]);
        string v = VectorFile(dir, "v.safetensors", wa.Config, QV, (_, i) => (i % 3) - 1);
        string fi = VectorFile(dir, "f.safetensors", wa.Config, QV, (_, i) => (i * 7919 % 101) / 101f);
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        var realigner = new Realigner(wa, theta, vFile, fFile, new RealignOptions { Modules = QV, OutputDType = TensorDType.F32, Obs = new ObsOptions { BlockSize = 8, Strategy = RemovalMethods.Irr.Create(0.3) } });
        Assert.Contains(realigner.OutputSpecs(), s => s.Name == "lm_head.weight");
        var output = Run(realigner, Calibration(3, 6, seed: 5));
        Assert.Equal(embed, output["model.embed_tokens.weight"]);
        Assert.Equal(AdapterFiles.Stored(a, "model.embed_tokens.weight"), output["lm_head.weight"]);
        Assert.False(theta.Config.TieWordEmbeddings);
    }
}
