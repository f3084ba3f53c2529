using Irr.IO;
using Irr.Model;

namespace Irr.Tests.Model;

public class GenerationTests
{
    private static Transformer Model(int seed = 11)
    {
        var config = ModelConfig.Parse(TransformerTests.Tiny, "config.json");
        // Larger weights make the tiny model's next-token distribution peaked, so greedy choices are
        // far from ties and the comparison below is not at the mercy of rounding.
        return new Transformer(TransformerTests.RandomParameters(config, seed, scale: 1.5f));
    }

    // Greedy decoding by running the whole sequence through the model at every step.
    private static List<int> GreedyWithoutCache(Transformer model, int[] prompt, int steps, List<float[]> lastLogits)
    {
        var seq = prompt.ToList();
        var generated = new List<int>();
        int v = model.Config.VocabSize;
        for (int i = 0; i < steps; i++)
        {
            var logits = model.Logits(Batch.Create([seq.ToArray()]));
            var last = logits.AsSpan((seq.Count - 1) * v, v).ToArray();
            lastLogits.Add(last);
            int token = Array.IndexOf(last, last.Max());
            generated.Add(token);
            seq.Add(token);
        }
        return generated;
    }

    [Fact]
    public void KvCacheGenerationEqualsRepeatedFullForwardPasses()
    {
        var model = Model();
        int[][] prompts = [[1, 2, 3, 4, 5], [6], [7, 3, 3, 10, 0, 9, 2]];
        var cached = Generation.Generate(model, prompts, new GenerationOptions { MaxNewTokens = 8, BatchSize = 2 });
        for (int p = 0; p < prompts.Length; p++)
        {
            var referenceLogits = new List<float[]>();
            Assert.Equal(GreedyWithoutCache(model, prompts[p], 8, referenceLogits), cached[p]);
        }

        // And step by step, the cached logits are the full pass's logits.
        var cache = new KvCache(model.Config, 1);
        var full = new List<float[]>();
        var tokens = GreedyWithoutCache(model, prompts[2], 5, full);
        IReadOnlyList<int> next = prompts[2];
        for (int step = 0; step < 5; step++)
        {
            var logits = model.NextTokenLogits([next], cache, [0]);
            for (int j = 0; j < logits.Length; j++) Assert.Equal(full[step][j], logits[j], 1e-4);
            next = [tokens[step]];
        }
    }

    [Fact]
    public void StopsAtAnyEosOrAtMaxNewTokens()
    {
        var model = Model();
        int[] prompt = [4, 4, 2];
        var free = Generation.Generate(model, [prompt], new GenerationOptions { MaxNewTokens = 6 })[0];
        Assert.Equal(6, free.Length);
        var stopped = Generation.Generate(model, [prompt], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [99, free[2]] })[0];
        int first = Array.IndexOf(free, free[2]);
        Assert.Equal(free[..(first + 1)], stopped);
        Assert.Empty(Generation.Generate(model, [prompt], new GenerationOptions { MaxNewTokens = 0 })[0]);
    }

    [Fact]
    public void SamplingIsSeededAndIndependentOfBatching()
    {
        var model = Model();
        int[][] prompts = [[1, 2], [3], [4, 5, 6]];
        var o = new GenerationOptions { MaxNewTokens = 6, Temperature = 1.5f, TopP = 0.95f, Seed = 42 };
        var a = Generation.Generate(model, prompts, o with { BatchSize = 3 });
        var b = Generation.Generate(model, prompts, o with { BatchSize = 1 });
        Assert.Equal(a, b);
        var c = Generation.Generate(model, prompts, o with { Seed = 43 });
        Assert.NotEqual(a, c);
        // top-k = 1 is greedy.
        Assert.Equal(Generation.Generate(model, prompts, new GenerationOptions { MaxNewTokens = 6 }),
            Generation.Generate(model, prompts, o with { TopK = 1 }));
    }

    [Fact]
    public void SamplerFollowsTheDistribution()
    {
        // softmax([0, ln 3]) = [0.25, 0.75]; 20,000 draws: σ of the frequency is 0.003.
        var rng = new Random(1);
        var o = new GenerationOptions { Temperature = 1f };
        int ones = 0;
        for (int i = 0; i < 20000; i++) ones += Generation.Pick([0f, MathF.Log(3)], o, rng);
        Assert.InRange(ones / 20000.0, 0.735, 0.765);

        // Probabilities [0.5, 0.3, 0.2] with top_p = 0.6 keep the first two, renormalised to [0.625, 0.375].
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.2f)];
        var counts = new int[3];
        for (int i = 0; i < 20000; i++) counts[Generation.Pick(logits, o with { TopP = 0.6f }, rng)]++;
        Assert.Equal(0, counts[2]);
        Assert.InRange(counts[0] / 20000.0, 0.61, 0.64);
        // Temperature 0.5 squares the odds: [0.25, 0.09, 0.04] / 0.38.
        counts = new int[3];
        for (int i = 0; i < 20000; i++) counts[Generation.Pick(logits, o with { Temperature = 0.5f }, rng)]++;
        Assert.InRange(counts[0] / 20000.0, 0.25 / 0.38 - 0.015, 0.25 / 0.38 + 0.015);
    }
}
