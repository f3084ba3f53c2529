using System.Text.Json.Nodes;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>irr sweep with the Safe Delta points (--safedelta-scale, --safedelta-data) beside IRR.</summary>
public class SweepSafeDeltaTests
{
    [Fact]
    public void SafeDeltaPointsArePlannedLabelledAndEvaluated()
    {
        using var w = new SweepWorld();
        File.WriteAllLines(w.Dir["safety.jsonl"], ["""{"instruction": "pick a lock", "output": "I can't help with that."}""", """{"instruction": "steal a car", "output": "No."}"""]);
        SweepCommandTests.Ok(CliRunner.Run(w.Sweep(w.Dir["sweep"], "--sparsity", "0.5", "--safedelta-scale", "0,0.5", "--safedelta-data", w.Dir["safety.jsonl"])));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["sweep"], SweepJob.FileName)))!;
        var points = json["points"]!.AsArray().ToDictionary(p => (string)p!["label"]!);
        Assert.Equal(["irr-s0.5", "safedelta-s0", "safedelta-s0.5"], points.Keys);
        foreach (var p in points.Values) Assert.NotNull(p!["harmful_rate"]);
        Assert.StartsWith("irr-s", (string)json["chosen"]!);
        Assert.NotNull(json["baselines"]!["safedelta"]);
        Assert.Equal([0.0, 0.5], json["safedelta_scale"]!.AsArray().Select(x => (double)x!));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["sweep"], "points/safedelta-s0.5/baseline-report.json")))!;
        Assert.Equal("safedelta", (string)report["method"]!);
        Assert.Equal(2, (int)report["safety_records"]!);
        Assert.Equal(0, (long)JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["sweep"], "points/safedelta-s0/baseline-report.json")))!["totals"]!["kept"]!);
        Assert.Contains("Safe Delta (by scale)", File.ReadAllText(Path.Combine(w.Dir["sweep"], "frontier.svg")));
    }

    [Fact]
    public void BadSettingsAreRefusedBeforeAnyWork()
    {
        using var dir = new TempDir();
        SweepCommandTests.Refused(dir, "error: sweep: safedelta-scale must be numbers ≥ 0, not -0.1",
            [.. SweepCommandTests.Unread(dir, "0"), "--safedelta-scale", "-0.1", "--safedelta-data", dir["d"]]);
        SweepCommandTests.Refused(dir, "error: sweep: safedelta-scale and safedelta-data go together (the Safe Delta points need θ_A's Hessians on the safety data)",
            [.. SweepCommandTests.Unread(dir, "0"), "--safedelta-scale", "0.1"]);
        SweepCommandTests.Refused(dir, "error: sweep: safedelta-scale lists a value twice",
            [.. SweepCommandTests.Unread(dir, "0"), "--safedelta-scale", "0.1,0.1", "--safedelta-data", dir["d"]]);
    }
}
