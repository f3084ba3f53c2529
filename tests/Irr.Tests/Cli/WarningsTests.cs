using System.Text.Json.Nodes;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>
/// Every warning the library gives reaches every command, once: an adapter whose adapter_config.json says
/// <c>fan_in_fan_out: true</c> (docs/formats.md: "ignored with a warning") gives exactly one
/// <c>warning: …fan_in_fan_out…</c> line on standard error, whichever command loads it, however often.
/// </summary>
public class WarningsTests
{
    private static string FanInFanOutAdapter(SweepWorld w)
    {
        string adapter = w.Dir["adapter"];
        SweepCommandTests.Ok(CliRunner.Run("train", "--model", w.Aligned, "--data", w.Calibration, "--lora", "--rank", "2", "--alpha", "4",
            "--targets", "q_proj,down_proj", "--epochs", "1", "-o", adapter));
        string config = Path.Combine(adapter, "adapter_config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["fan_in_fan_out"] = true;
        File.WriteAllText(config, json.ToJsonString());
        return adapter;
    }

    [Fact]
    public void AFanInFanOutAdapterIsWarnedAboutOnceByEveryCommandThatLoadsIt()
    {
        using var w = new SweepWorld();
        string adapter = FanInFanOutAdapter(w);
        File.WriteAllText(w.Dir["texts.jsonl"], """{"text": "the answer 1"}""");
        string[] realign = [.. w.RealignArgs.Select(a => a == w.Finetuned ? adapter : a == "--finetuned" ? "--adapter" : a)];
        string[][] commands =
        [
            ["inspect", adapter],
            ["inspect", adapter, "--json"],
            ["score", "--model", w.Aligned, "--adapter", adapter, "--data", w.Calibration, "-o", w.Dir["score.json"]],
            ["generate", "--model", w.Aligned, "--adapter", adapter, "--prompts", w.Harmful, "--max-new-tokens", "2", "-o", w.Dir["gen.jsonl"]],
            ["eval", "safety", "--model", w.Aligned, "--adapter", adapter, "--prompts", w.Harmful, "--max-new-tokens", "2", "-o", w.Dir["safety"]],
            ["eval", "task", "--model", w.Aligned, "--adapter", adapter, "--data", w.Task, "--metric", "exact", "--max-new-tokens", "2", "-o", w.Dir["task"]],
            ["eval", "ppl", "--model", w.Aligned, "--adapter", adapter, "--data", w.Dir["texts.jsonl"], "-o", w.Dir["ppl"]],
            ["safety-vector", "--aligned", w.Aligned, "--unaligned-adapter", adapter, "--modules", "q_proj,down_proj", "-o", w.Dir["v2.safetensors"]],
            ["realign", .. realign, "--sparsity", "0.5", "-o", w.Dir["realigned"]],
            ["sweep", .. realign, "--harmful-val", w.Harmful, "--task-val", w.Task, "--task-metric", "exact", "--max-new-tokens", "2",
                "--sparsity", "0.25,0.5", "-o", w.Dir["sweep"]],
        ];
        foreach (var args in commands)
        {
            var (code, _, err) = CliRunner.Run(args);
            string command = string.Join(' ', args.TakeWhile(a => a.StartsWith('-') || !a.Contains('/')));
            Assert.True(code == 0, $"{command}: {err}");
            var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains("fan_in_fan_out")).ToList();
            Assert.True(lines.Count == 1, $"{command}: {lines.Count} lines name fan_in_fan_out:\n{err}");
            Assert.StartsWith("warning: ", lines[0]);
        }
        // The text of inspect names it once in all (standard error), not again in its table.
        var (_, output, _) = CliRunner.Run("inspect", adapter);
        Assert.DoesNotContain("fan_in_fan_out", output);
    }

    [Fact]
    public void AModelDirectorysWarningReachesTheCommandsThatTakeNoAdapter()
    {
        // fisher and train load a model only: a directory with two weight layouts is their warning, once each.
        using var dir = new TempDir();
        string model = Irr.Tests.IO.WeightLayoutTests.Mixed(dir, out _);
        File.WriteAllLines(dir["data.jsonl"], [new JsonObject { ["instruction"] = "say 1", ["output"] = "the 1" }.ToJsonString()]);
        string[][] commands =
        [
            ["fisher", "--model", model, "--data", dir["data.jsonl"], "--modules", "q_proj", "-o", dir["f.safetensors"]],
            ["train", "--model", model, "--data", dir["data.jsonl"], "--lora", "--rank", "2", "--targets", "q_proj", "--epochs", "1", "-o", dir["adapter"]],
            ["generate", "--model", model, "--prompts", dir["data.jsonl"], "--max-new-tokens", "2", "-o", dir["gen.jsonl"]],
        ];
        foreach (var args in commands)
        {
            var (code, _, err) = CliRunner.Run(args);
            Assert.True(code == 0, $"{args[0]}: {err}");
            Assert.Single(err.Split('\n'), l => l.StartsWith("warning: ", StringComparison.Ordinal) && l.Contains("holds both"));
        }
    }
}
