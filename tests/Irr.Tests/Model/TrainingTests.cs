using Irr.IO;
using Irr.Model;
using Irr.Tests.IO;

namespace Irr.Tests.Model;

public class TrainingTests
{
    [Fact]
    public void AdamWStepWorkedByHand()
    {
        // p = 1, g = 0.5, lr = 0.1, wd = 0.01, first step:
        //   p ← 1·(1 − 0.1·0.01) = 0.999;  m = 0.1·0.5 = 0.05;  v = 0.001·0.25 = 0.00025
        //   m̂ = 0.05/0.1 = 0.5;  v̂ = 0.00025/0.001 = 0.25;  p ← 0.999 − 0.1·0.5/(0.5 + 1e-8) = 0.899
        float[] p = [1f], m = [0f], v = [0f];
        Trainer.AdamW(p, [0.5f], m, v, 1, 0.1, new TrainingOptions { WeightDecay = 0.01 }, decay: true);
        // float32 arithmetic: a few ulps of 0.9 (6e−8 each)
        Assert.Equal(0.899, p[0], 1e-6);
        Assert.Equal(0.05, m[0], 1e-7);
        Assert.Equal(0.00025, v[0], 1e-9);
        // Second step with g = −0.5: m = 0.9·0.05 − 0.05 = −0.005, v = 0.999·0.00025 + 0.00025
        Trainer.AdamW(p, [-0.5f], m, v, 2, 0.1, new TrainingOptions(), decay: false);
        double mHat = -0.005 / (1 - 0.81), vHat = (0.999 * 0.00025 + 0.001 * 0.25) / (1 - 0.998001);
        Assert.Equal(0.899 - 0.1 * mHat / (Math.Sqrt(vHat) + 1e-8), p[0], 1e-5);
    }

    [Fact]
    public void LearningRateSchedules()
    {
        var o = new TrainingOptions { LearningRate = 1.0, WarmupRatio = 0.1 };
        // 100 steps, 10 of warm-up: step 5 is halfway up; step 10 is the peak.
        Assert.Equal(0.5, Trainer.LearningRateAt(5, 100, o));
        Assert.Equal(1.0, Trainer.LearningRateAt(10, 100, o));
        Assert.Equal(0.5, Trainer.LearningRateAt(55, 100, o), 1e-9);                                  // linear: half-way down
        Assert.Equal(0.5, Trainer.LearningRateAt(55, 100, o with { Schedule = LearningRateSchedule.Cosine }), 1e-9);
        Assert.Equal(0.5 * (1 + Math.Cos(Math.PI * 0.25)), Trainer.LearningRateAt(25, 100, o with { Schedule = LearningRateSchedule.Cosine, WarmupRatio = 0 }), 1e-9);
        Assert.Equal(1.0, Trainer.LearningRateAt(99, 100, o with { Schedule = LearningRateSchedule.Constant }));
        Assert.Equal(12, Trainer.TotalSteps(45, new TrainingOptions { Epochs = 3, BatchSize = 4, GradientAccumulationSteps = 3 })); // 12 micro → 4 steps × 3
    }

    // The copy task: "x1 … x6 SEP x1 … x6" with loss on the copy. The model must attend 7 positions
    // back, which RoPE makes expressible.
    private static List<TrainingExample> CopyTask(int count, int seed)
    {
        var rng = new Random(seed);
        var examples = new List<TrainingExample>();
        for (int i = 0; i < count; i++)
        {
            var x = Enumerable.Range(0, 6).Select(_ => 1 + rng.Next(10)).ToArray();
            int[] tokens = [.. x, 11, .. x];
            int[] labels = [.. Enumerable.Repeat(-100, 7), .. x];
            examples.Add(new TrainingExample(tokens, labels));
        }
        return examples;
    }

    private const string CopyConfig = """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 12, "rms_norm_eps": 1e-5, "rope_theta": 10000.0}
        """;

    [Fact]
    public void ATwoLayerModelLearnsToCopy()
    {
        var config = ModelConfig.Parse(CopyConfig, "config.json");
        var weights = TransformerTests.RandomParameters(config, seed: 1, scale: 0.1f);
        var model = new Transformer(weights);
        var data = CopyTask(256, seed: 2);
        var test = CopyTask(32, seed: 3);
        double before = model.Loss(Batch.Create(test.Select(e => (IReadOnlyList<int>)e.Tokens).ToList(), test.Select(e => (IReadOnlyList<int>)e.Labels).ToList())).Loss;
        var losses = new List<double>();
        new Trainer(model).Train(data, new TrainingOptions { Epochs = 12, LearningRate = 1e-2, BatchSize = 16, WarmupRatio = 0.05, Schedule = LearningRateSchedule.Cosine, Seed = 4 },
            p => losses.Add(p.Loss));
        Assert.Equal(12 * 16, losses.Count);
        double after = model.Loss(Batch.Create(test.Select(e => (IReadOnlyList<int>)e.Tokens).ToList(), test.Select(e => (IReadOnlyList<int>)e.Labels).ToList())).Loss;
        Assert.True(before > 2.0, $"untrained loss {before}");
        Assert.True(after < 0.05, $"held-out loss after training is {after} (training losses: first {losses[0]:F3}, last {losses[^1]:F3})");
    }

    [Fact]
    public void TrainingIsDeterministicAndSavedModelsReloadToTheSameLogits()
    {
        var config = ModelConfig.Parse(TransformerTests.Tiny, "config.json");
        var data = CopyTask(20, seed: 5).Select(e => new TrainingExample(e.Tokens.Select(t => t % 11).ToArray(), e.Labels.Select(t => t < 0 ? t : t % 11).ToArray())).ToList();
        ParameterSet Run()
        {
            var w = TransformerTests.RandomParameters(config, seed: 6);
            new Trainer(new Transformer(w)).Train(data, new TrainingOptions { Epochs = 2, LearningRate = 1e-3, BatchSize = 4, GradientAccumulationSteps = 2, WeightDecay = 0.1, Seed = 7 });
            return w;
        }
        var a = Run();
        var b = Run();
        foreach (var (name, values) in a.Tensors) Assert.Equal(values, b[name]);

        using var dir = new TempDir();
        a.Save(dir["saved"], TensorDType.F32, filesFrom: null);
        using var reloaded = CheckpointWeights.Open(dir["saved"]);
        Assert.Equal(TensorDType.F32, reloaded.Config.TorchDType);
        var batch = Batch.Create([[1, 2, 3, 4], [5, 6]]);
        Assert.Equal(new Transformer(a).Logits(batch), new Transformer(reloaded).Logits(batch));
    }

    [Fact]
    public void LoraTrainingLeavesTheBaseUntouchedAndTheSavedAdapterReproducesTheModel()
    {
        using var dir = new TempDir();
        string basePath = TinyModels.Create(dir["base"], dtype: TensorDType.BF16);
        var baseBytes = File.ReadAllBytes(Path.Combine(basePath, "model.safetensors"));
        using var weights = CheckpointWeights.Open(basePath);
        var lora = LoraWeights.Create(weights.Config, rank: 4, alpha: 8, ["q_proj", "v_proj", "down_proj"], rslora: true, seed: 8);
        var model = new Transformer(weights, lora);
        var data = CopyTask(24, seed: 9).Select(e => new TrainingExample(e.Tokens.Select(t => t % 64).ToArray(), e.Labels)).ToList();
        var batch = Batch.Create([data[0].Tokens, data[1].Tokens]);
        var untrained = model.Logits(batch);
        new Trainer(model).Train(data, new TrainingOptions { Epochs = 3, LearningRate = 5e-3, BatchSize = 4, Seed = 10 });
        var trained = model.Logits(batch);
        Assert.NotEqual(untrained, trained); // B moved away from zero
        Assert.Equal(baseBytes, File.ReadAllBytes(Path.Combine(basePath, "model.safetensors")));

        lora.Save(dir["adapter"], basePath, TensorDType.F32, [basePath]);
        using var merged = CheckpointWeights.Open(basePath, dir["adapter"]);
        Assert.Equal(Math.Sqrt(4) is var sqrtR ? 8 / sqrtR : 0, merged.Adapter!.Config.Scale);
        var reproduced = new Transformer(merged).Logits(batch);
        for (int i = 0; i < trained.Length; i++) Assert.Equal(trained[i], reproduced[i], 1e-4);
    }

    [Fact]
    public void FrozenTensorsStayPutAndTheTrainedOnesTakeTheUnfrozenStep()
    {
        // Freeze tuning: only the q_proj and down_proj weights train. Without clipping (the only coupling between
        // tensors in AdamW is the global gradient norm), their first step must equal, bit for bit, the step of the same
        // tensors in a run that trains every tensor, since a tensor's gradient does not depend on which others train;
        // the frozen tensors must not move at all.
        var config = ModelConfig.Parse(CopyConfig, "config.json");
        var data = CopyTask(8, seed: 11);
        var options = new TrainingOptions { Epochs = 1, LearningRate = 1e-2, BatchSize = 8, MaxGradNorm = 0, WeightDecay = 0.1, Seed = 12 };
        var initial = TransformerTests.RandomParameters(config, seed: 13, scale: 0.1f);
        var all = TransformerTests.RandomParameters(config, seed: 13, scale: 0.1f);
        var frozen = TransformerTests.RandomParameters(config, seed: 13, scale: 0.1f);
        new Trainer(new Transformer(all)).Train(data, options);
        static bool Trainable(string name) => name.EndsWith(".q_proj.weight", StringComparison.Ordinal) || name.EndsWith(".down_proj.weight", StringComparison.Ordinal);
        new Trainer(new Transformer(frozen), Trainable).Train(data, options);
        int trained = 0;
        foreach (var (name, values) in frozen.Tensors)
        {
            if (Trainable(name))
            {
                trained++;
                Assert.NotEqual(initial[name], values);
                Assert.Equal(all[name], values);
            }
            else Assert.Equal(initial[name], values);
        }
        Assert.Equal(2 * 2, trained); // two layers, two modules
        Assert.Throws<ArgumentException>(() => new Trainer(new Transformer(frozen), _ => false));
    }

    [Fact]
    public void TrainJobRefusesTrainableModulesOutsideAFullFineTune()
    {
        var lora = new TrainJob { Model = "m", Data = "d", OutputPath = "o", Lora = true, TrainableModules = ["q_proj"] };
        Assert.Contains("trainable-modules applies to full fine-tuning", Assert.Throws<IrrException>(lora.Validate).Message);
        var unknown = new TrainJob { Model = "m", Data = "d", OutputPath = "o", Full = true, TrainableModules = ["embed_tokens"] };
        Assert.Contains("trainable-modules must be among q_proj", Assert.Throws<IrrException>(unknown.Validate).Message);
    }
}
