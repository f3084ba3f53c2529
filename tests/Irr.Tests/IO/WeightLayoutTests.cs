using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Tests.Cli;

namespace Irr.Tests.IO;

/// <summary>A directory with both model.safetensors and a shard index loads model.safetensors, as transformers does, and says so.</summary>
public class WeightLayoutTests
{
    private const string Tensor = "model.layers.0.self_attn.q_proj.weight";

    // A chat model of seed 1 in model.safetensors, plus the index and shards of the same model with seed 2.
    internal static string Mixed(TempDir dir, out int shardCount)
    {
        string model = ModelCommandTests.ChatModel(dir, "mixed", seed: 1);
        string resharded = TinyModels.Create(dir["resharded"], File.ReadAllText(Path.Combine(model, "config.json")), seed: 2, maxShardBytes: 2048);
        shardCount = 0;
        foreach (string file in Directory.EnumerateFiles(resharded).Where(f => ModelDirectory.IsWeightFile(Path.GetFileName(f))))
        {
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
            if (file.EndsWith(".safetensors", StringComparison.Ordinal)) shardCount++;
        }
        Assert.True(shardCount > 1);
        return model;
    }

    [Fact]
    public void TheSingleFileWinsOverTheShardIndexWithAWarning()
    {
        using var dir = new TempDir();
        string model = Mixed(dir, out int shards);
        float[] single, sharded;
        using (var file = SafetensorsFile.Open(Path.Combine(model, ModelDirectory.WeightsFile))) single = file.ReadSingle(Tensor);
        using (var other = ModelDirectory.Open(dir["resharded"])) sharded = other.ReadSingle(Tensor);
        Assert.NotEqual(single, sharded); // the two layouts really differ

        var heard = new List<string>();
        using (Diagnostics.Listen(heard.Add))
        {
            using var opened = ModelDirectory.Open(model);
            Assert.Equal(single, opened.ReadSingle(Tensor));
            Assert.Null(opened.IndexPath);
            Assert.Single(opened.Shards);
            string expected = $"{model}: holds both model.safetensors and model.safetensors.index.json (+{shards} shards); loading model.safetensors, as transformers does";
            Assert.Equal([expected], opened.Warnings);
            Assert.Equal([expected], heard);
        }

        // One layout only: no warning.
        using var clean = ModelDirectory.Open(dir["resharded"]);
        Assert.Empty(clean.Warnings);
    }

    [Fact]
    public void CommandsPrintTheWarningOnceOnStandardError()
    {
        using var dir = new TempDir();
        string model = Mixed(dir, out int shards);
        string line = $"warning: {model}: holds both model.safetensors and model.safetensors.index.json (+{shards} shards); loading model.safetensors, as transformers does";
        File.WriteAllLines(dir["data.jsonl"], [new JsonObject { ["instruction"] = "say 1", ["output"] = "the 1" }.ToJsonString()]);

        var inspect = CliRunner.Run("inspect", model);
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Single(inspect.Err.Split('\n'), l => l == line);

        var score = CliRunner.Run("score", "--model", model, "--data", dir["data.jsonl"], "-o", dir["mixed.json"]);
        Assert.True(score.Code == 0, score.Err);
        Assert.Single(score.Err.Split('\n'), l => l.StartsWith("warning: ", StringComparison.Ordinal));
        Assert.Contains(line, score.Err.Split('\n'));

        // The scores are the single file's: the same as a directory holding only that file.
        string alone = ModelCommandTests.ChatModel(dir, "alone", seed: 1);
        var plain = CliRunner.Run("score", "--model", alone, "--data", dir["data.jsonl"], "-o", dir["alone.json"]);
        Assert.True(plain.Code == 0, plain.Err);
        Assert.DoesNotContain("warning: ", plain.Err);
        double Loss(string path) => (double)JsonNode.Parse(File.ReadAllText(path))!["mean_loss"]!;
        Assert.Equal(Loss(dir["alone.json"]), Loss(dir["mixed.json"]));

        // Without a listener (a library caller) nothing is printed, and the next command hears only its own.
        var again = CliRunner.Run("inspect", alone);
        Assert.DoesNotContain("warning: ", again.Err);
    }
}
