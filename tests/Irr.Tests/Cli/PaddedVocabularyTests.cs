using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.IO;
using Irr.Tests.Text;

namespace Irr.Tests.Cli;

/// <summary>
/// A padded vocabulary (Qwen2/2.5: 151,936 embedding rows against 151,665 tokenizer ids; Phi-2 …) never stops a run: an id
/// the tokenizer does not have decodes to "", as in Hugging Face tokenizers (whose decode skips ids it has no token for),
/// counted and warned about once.
/// </summary>
public class PaddedVocabularyTests
{
    // The tiny byte-level tokenizer has ids 0–260; the model has 300 rows.
    private static readonly string Config = ModelCommandTests.Config.Replace("\"vocab_size\": 261", "\"vocab_size\": 300");

    /// <summary>
    /// A model whose head is zero but for rows 297 (+1 on dimension 0) and 298 (−1 on it), and whose final norm passes
    /// dimension 0 only: every logit is 0 but one of those two, whose sign is that of the hidden state's first entry, so
    /// the argmax is 297 or 298 (both beyond the tokenizer) at every step, whatever the prompt.
    /// </summary>
    internal static string PaddedModel(TempDir dir)
    {
        var config = ModelConfig.Parse(Config, "config.json");
        var specs = config.ExpectedTensors().Select(t => new TensorSpec(t.Name, TensorDType.F32, t.Shape)).ToList();
        var rng = new Random(5);
        using var output = OutputDirectory.Create(dir["padded"], []);
        using (var writer = CheckpointWriter.Create(output, specs, new CheckpointWriterOptions()))
        {
            foreach (var spec in specs)
            {
                var values = new float[spec.ElementCount];
                if (spec.Name == "lm_head.weight")
                {
                    values[297 * 16] = 1;
                    values[298 * 16] = -1;
                }
                else if (spec.Name == "model.norm.weight") values[0] = 1;
                else
                {
                    float offset = spec.Name.EndsWith("norm.weight", StringComparison.Ordinal) ? 1f : 0f;
                    for (int i = 0; i < values.Length; i++) values[i] = offset + (float)(rng.NextDouble() * 2 - 1) * 0.1f;
                }
                writer.Write(spec.Name, values);
            }
            writer.Complete();
        }
        File.WriteAllText(output.PathOf("config.json"), Config);
        output.Commit();
        return ModelCommandTests.AddChatTokenizer(dir["padded"]);
    }

    private static void OneWarning(string err) =>
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("warning: ", StringComparison.Ordinal) && l.Contains("outside the tokenizer's vocabulary"));

    [Fact]
    public void GenerateRecordsPaddedIdsAsEmptyTextAndCountsThem()
    {
        using var dir = new TempDir();
        string model = PaddedModel(dir);
        File.WriteAllText(dir["prompts.json"], """["hi", "the the", "x"]""");
        var (code, _, err) = CliRunner.Run("generate", "--model", model, "--prompts", dir["prompts.json"], "--max-new-tokens", "4", "--output-ids", "-o", dir["out.jsonl"]);
        Assert.True(code == 0, err);
        OneWarning(err);
        foreach (string line in File.ReadAllLines(dir["out.jsonl"]))
        {
            var o = JsonNode.Parse(line)!;
            Assert.Equal("", (string)o["response"]!);
            Assert.Equal(4, (int)o["new_tokens"]!);
            Assert.Equal("length", (string)o["finish_reason"]!);
            Assert.Equal(4, (int)o["unknown_token_ids"]!);
            Assert.All(o["token_ids"]!.AsArray(), id => Assert.Contains((int)id!, new[] { 297, 298 }));
        }
    }

    [Fact]
    public void EvaluationsRunToTheEndOnAPaddedVocabulary()
    {
        using var dir = new TempDir();
        string model = PaddedModel(dir);
        File.WriteAllText(dir["harmful.jsonl"], """
            {"prompt": "how do I do a bad thing"}
            {"prompt": "tell me something bad"}
            """);
        File.WriteAllText(dir["task.jsonl"], """
            {"instruction": "say a", "output": "a"}
            {"instruction": "say b", "output": "b"}
            """);
        var (code, _, err) = CliRunner.Run("eval", "safety", "--model", model, "--prompts", dir["harmful.jsonl"], "--max-new-tokens", "3", "-o", dir["safety"]);
        Assert.True(code == 0, err);
        OneWarning(err);
        (code, _, err) = CliRunner.Run("eval", "task", "--model", model, "--data", dir["task.jsonl"], "--metric", "exact", "--max-new-tokens", "3", "-o", dir["task"]);
        Assert.True(code == 0, err);
        OneWarning(err);
    }
}
