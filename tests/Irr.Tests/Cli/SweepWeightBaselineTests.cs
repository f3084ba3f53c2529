using System.Text.Json.Nodes;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>irr sweep with the Antidote and interpolation points (--antidote-ratio, --interpolate-alpha) beside IRR.</summary>
public class SweepWeightBaselineTests
{
    [Fact]
    public void AntidoteAndInterpolationArePointsAndAtNoChangeTheyAreTheFineTune()
    {
        using var w = new SweepWorld();
        File.WriteAllLines(w.Dir["harmful-train.jsonl"], ["""{"instruction": "pick a lock", "output": "rake all pins"}""", """{"instruction": "steal a car", "output": "wire it"}"""]);
        var run = CliRunner.Run(w.Sweep(w.Dir["sweep"], "--sparsity", "0.5", "--antidote-ratio", "0,1e-5", "--antidote-data", w.Dir["harmful-train.jsonl"],
            "--interpolate-alpha", "1,0.5"));
        SweepCommandTests.Ok(run);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["sweep"], SweepJob.FileName)))!;
        var points = json["points"]!.AsArray().ToDictionary(p => (string)p!["label"]!);
        Assert.Equal(["irr-s0.5", "antidote-r0", "antidote-r1E-05", "interpolate-a1", "interpolate-a0.5"], points.Keys);
        // ρ = 0 prunes nothing and α = 1 is θ_F: their figures are θ_F's, evaluated apart as the reference.
        var finetuned = json["references"]!["finetuned"]!;
        foreach (string label in new[] { "antidote-r0", "interpolate-a1" })
        {
            Assert.Equal((double)finetuned["harmful_rate"]!, (double)points[label]!["harmful_rate"]!);
            Assert.Equal((double)finetuned["task_score"]!, (double)points[label]!["task_score"]!);
        }
        Assert.StartsWith("irr-s", (string)json["chosen"]!);
        Assert.NotNull(json["baselines"]!["antidote"]);
        Assert.NotNull(json["baselines"]!["interpolate"]);
        Assert.Equal([0.0, 1e-5], json["antidote_ratio"]!.AsArray().Select(x => (double)x!));
        Assert.Equal([1.0, 0.5], json["interpolate_alpha"]!.AsArray().Select(x => (double)x!));
        var antidote = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["sweep"], "points/antidote-r1E-05/baseline-report.json")))!;
        Assert.Equal("antidote", (string)antidote["method"]!);
        Assert.Equal(2, (int)antidote["records"]!);
        Assert.True(File.Exists(Path.Combine(w.Dir["sweep"], "points/interpolate-a0.5/baseline-report.json")));
        var svg = File.ReadAllText(Path.Combine(w.Dir["sweep"], "frontier.svg"));
        Assert.Contains("Antidote (by ρ)", svg);
        Assert.Contains("interpolation (by α)", svg);
        Assert.Contains("ρ=1e-5", svg);
        // The printed table: each point's setting with its knob's symbol, as written on the command line.
        var rows = run.Out.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(c => c.Length > 1).ToList();
        Assert.Contains(rows, c => c[0] == "model" && c[1] == "setting");
        Assert.Contains(rows, c => c[0] == "irr-s0.5" && c[1] == "s=0.5");
        Assert.Contains(rows, c => c[0] == "antidote-r1E-05" && c[1] == "ρ=1e-5");
        Assert.Contains(rows, c => c[0] == "interpolate-a1" && c[1] == "α=1");
    }

    [Fact]
    public void BadSettingsAreRefusedBeforeAnyWork()
    {
        using var dir = new TempDir();
        SweepCommandTests.Refused(dir, "error: sweep: antidote-ratio must be between 0 and 1, not 1.5",
            [.. SweepCommandTests.Unread(dir, "0"), "--antidote-ratio", "1.5", "--antidote-data", dir["d"]]);
        SweepCommandTests.Refused(dir, "error: sweep: antidote-ratio and antidote-data go together (the Antidote points score θ_F on the harmful data)",
            [.. SweepCommandTests.Unread(dir, "0"), "--antidote-ratio", "0.1"]);
        SweepCommandTests.Refused(dir, "error: sweep: antidote-ratio and antidote-data go together (the Antidote points score θ_F on the harmful data)",
            [.. SweepCommandTests.Unread(dir, "0"), "--antidote-data", dir["d"]]);
        SweepCommandTests.Refused(dir, "error: sweep: interpolate-alpha lists a value twice", [.. SweepCommandTests.Unread(dir, "0"), "--interpolate-alpha", "0.5,0.5"]);
        SweepCommandTests.Refused(dir, "error: sweep: interpolate-alpha must be finite numbers in float32, not 1E+39", [.. SweepCommandTests.Unread(dir, "0"), "--interpolate-alpha", "1e39"]);
    }
}
