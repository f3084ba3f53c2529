using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Model;

/// <summary>
/// Qwen3, Gemma-2, Gemma-3 (text) and Phi-3 against an independent float64 forward written by hand from transformers'
/// modeling code (tests/fixtures/torch/make_families.py, torch 1.13): tiny random checkpoints of each family, loaded as a
/// user's model directory, in float32, in bfloat16, and in float32 with a PEFT LoRA adapter merged on the fly. Per-token
/// log-probabilities within 1e-4 (float32) and 2e-4 (bfloat16, adapter), greedy generations token for token, and
/// <c>irr score</c> on each family within 2e-4 per token.
/// </summary>
public class FamilyReferenceTests
{
    private static string Fixture(string name) => Text.Fixtures.Local($"torch/families/{name}");

    private static JsonNode Reference(string variant) => JsonNode.Parse(File.ReadAllText(Fixture(variant + ".reference.json")))!;

    private static int[] Ints(JsonNode node) => node.AsArray().Select(x => (int)x!).ToArray();

    private static double[] Doubles(JsonNode node) => node.AsArray().Select(x => (double)x!).ToArray();

    // The reference of a variant, its key for a directory kind (f32, bf16, lora), and the weights irr loads for it.
    private static (JsonNode Reference, string Key, CheckpointWeights Weights) Open(string variant, string kind) => kind switch
    {
        "f32" => (Reference(variant), variant, CheckpointWeights.Open(Fixture(variant))),
        "bf16" => (Reference(variant), variant + "-bf16", CheckpointWeights.Open(Fixture(variant + "-bf16"))),
        _ => (Reference(variant), variant + "-lora", CheckpointWeights.Open(Fixture(variant), Fixture(variant + "-lora"))),
    };

    private static readonly string[] VariantNames = ["qwen3", "qwen3-tied", "gemma2", "gemma3", "gemma3-pattern", "phi3", "phi3-longrope"];

    public static TheoryData<string, string> Directories()
    {
        var data = new TheoryData<string, string>();
        foreach (string variant in VariantNames)
            foreach (string kind in new[] { "f32", "bf16", "lora" })
                data.Add(variant, kind);
        return data;
    }

    public static TheoryData<string> Families => new() { "qwen3", "gemma2", "gemma3", "phi3", "phi3-longrope" };

    [Theory]
    [MemberData(nameof(Directories))]
    public void LogProbsEqualTheFloat64Forward(string variant, string kind)
    {
        var (reference, key, weights) = Open(variant, kind);
        using var _ = weights;
        var model = new Transformer(weights);
        double tolerance = kind == "f32" ? 1e-4 : 2e-4;
        var sequences = reference["sequences"]!.AsArray().Select(s => Ints(s!)).ToArray();
        var expected = reference["logprobs"]![key]!.AsArray().Select(s => Doubles(s!)).ToArray();
        for (int s = 0; s < sequences.Length; s++)
        {
            var actual = SlidingWindowTests.TokenLogProbs(model, sequences[s]);
            Assert.Equal(expected[s].Length, actual.Length);
            for (int t = 0; t < actual.Length; t++)
                Assert.True(Math.Abs(actual[t] - expected[s][t]) < tolerance,
                    $"{key}: sequence {s} ({sequences[s].Length} tokens), log p(token {t + 1}) = {actual[t]}, float64 {expected[s][t]} (difference {actual[t] - expected[s][t]:E2})");
        }
    }

    [Theory]
    [MemberData(nameof(Directories))]
    public void GreedyGenerationsEqualTheFloat64Forward(string variant, string kind) =>
        AssertGreedy(variant, kind, prompt => prompt.Length + NewTokens <= OriginalMaxPositions(variant));

    public static TheoryData<string> Kinds => new() { "f32", "bf16", "lora" };

    // Phi-3 longrope chooses short_factor or long_factor by the length of each forward call; transformers'
    // Phi3ForCausalLM.prepare_inputs_for_generation drops the KV cache when the sequence first grows past
    // original_max_position_embeddings (16 here), so every later token sees keys recomputed with long_factor: a greedy
    // generation equals a full forward at each step. The prompt of 12 tokens crosses 16 at its sixth new token.
    [Theory]
    [MemberData(nameof(Kinds))]
    public void AGenerationPastOriginalMaxPositionEmbeddingsRecomputesItsKeysWithLongFactors(string kind) =>
        AssertGreedy("phi3-longrope", kind, prompt => prompt.Length + NewTokens > OriginalMaxPositions("phi3-longrope"));

    private const int NewTokens = 10;

    private static int OriginalMaxPositions(string variant) =>
        (int?)JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture(variant), "config.json")))!["original_max_position_embeddings"] ?? int.MaxValue;

    // The reference's greedy continuations of the prompts chosen by `which` (at least one) against irr's, token for token.
    private static void AssertGreedy(string variant, string kind, Func<int[], bool> which)
    {
        var (reference, key, weights) = Open(variant, kind);
        using var _ = weights;
        var cases = reference["greedy"]![key]!.AsArray().Where(c => which(Ints(c!["prompt"]!))).ToList();
        Assert.NotEmpty(cases);
        var prompts = cases.Select(c => (IReadOnlyList<int>)Ints(c!["prompt"]!)).ToList();
        var generated = Generation.Generate(new Transformer(weights), prompts, new GenerationOptions { MaxNewTokens = NewTokens });
        for (int i = 0; i < prompts.Count; i++)
        {
            var expected = Ints(cases[i]!["tokens"]!);
            Assert.True(expected.SequenceEqual(generated[i]),
                $"{key}: prompt [{string.Join(", ", prompts[i])}] gave [{string.Join(", ", generated[i])}], float64 [{string.Join(", ", expected)}]");
        }
    }

    // `irr score` on a copy of the float32 directory with the byte-level test tokenizer (ids 0–255 are the bytes of the
    // ASCII records, "<|end|>" is 260) and the test chat template "<{role}>{content}<|end|>".
    [Theory]
    [MemberData(nameof(Families))]
    public void ScoreEqualsTheFloat64Forward(string variant)
    {
        var reference = Reference(variant)["score"]!;
        using var dir = new TempDir();
        string model = dir["model"];
        Directory.CreateDirectory(model);
        foreach (string f in Directory.EnumerateFiles(Fixture(variant))) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        ModelCommandTests.AddChatTokenizer(model);
        File.WriteAllLines(dir["data.jsonl"], reference["records"]!.AsArray().Select(r => r!.ToJsonString()));

        var (code, _, error) = CliRunner.Run("score", "--model", model, "--data", dir["data.jsonl"], "-o", dir["scores.json"]);
        Assert.True(code == 0, error);
        var scores = JsonNode.Parse(File.ReadAllText(dir["scores.json"]))!["scores"]!.AsArray();
        var ids = reference["input_ids"]!.AsArray().Select(s => Ints(s!)).ToArray();
        var expected = reference["logprobs"]!.AsArray().Select(s => Doubles(s!)).ToArray();
        Assert.Equal(ids.Length, scores.Count);
        for (int r = 0; r < ids.Length; r++)
        {
            Assert.Equal(ids[r], Ints(scores[r]!["input_ids"]!));
            var labels = Ints(scores[r]!["labels"]!);
            var actual = Doubles(scores[r]!["token_logprobs"]!);
            // token_logprobs: log p(token t + 1) for every t + 1 whose label is set, in order.
            var wanted = Enumerable.Range(0, ids[r].Length - 1).Where(t => labels[t + 1] != -100).Select(t => expected[r][t]).ToArray();
            Assert.True(wanted.Length > 0, $"{variant}: record {r} has no labelled token");
            Assert.Equal(wanted.Length, actual.Length);
            for (int i = 0; i < wanted.Length; i++)
                Assert.True(Math.Abs(actual[i] - wanted[i]) < 2e-4, $"{variant}: record {r}, labelled token {i}: irr score {actual[i]}, float64 {wanted[i]}");
        }
    }
}
