using System.Text.Json.Nodes;
using Irr.Jobs;
using Irr.Tests.IO;

namespace Irr.Tests.Jobs;

/// <summary>irr run's rerun rule (issue 25): a step is up to date when its fingerprint, not every option, is as recorded.</summary>
public class RunLedgerFingerprintTests
{
    private static StepRecord Step(string output, JsonObject options, JsonObject? fingerprint) => new()
    {
        Id = "eval-safety",
        Command = "eval safety",
        Arguments = ["eval", "safety"],
        Options = options,
        Fingerprint = fingerprint,
        Output = output,
        Inputs = new SortedDictionary<string, string>(),
        Started = DateTime.UnixEpoch,
        Seconds = 1,
        Status = RunLedger.Done,
    };

    [Fact]
    public void AnOptionOutsideTheFingerprintDoesNotRerunAndOneInsideDoes()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["run"]);
        var ledger = RunLedger.Load(dir.Path);
        ledger.Record(Step(dir["run"], new JsonObject { ["judge-timeout"] = 120, ["max-new-tokens"] = 512 }, new JsonObject { ["max-new-tokens"] = 512 }));
        // A longer timeout changes how the work is done, not what it computes.
        Assert.True(ledger.IsUpToDate(Step(dir["run"], new JsonObject { ["judge-timeout"] = 600, ["max-new-tokens"] = 512 }, new JsonObject { ["max-new-tokens"] = 512 })));
        Assert.False(ledger.IsUpToDate(Step(dir["run"], new JsonObject { ["judge-timeout"] = 120, ["max-new-tokens"] = 256 }, new JsonObject { ["max-new-tokens"] = 256 })));
        // A record from before fingerprints were recorded is not trusted: the step reruns once.
        ledger.Record(Step(dir["run"], new JsonObject(), null));
        Assert.False(ledger.IsUpToDate(Step(dir["run"], new JsonObject(), new JsonObject())));
    }

    [Fact]
    public void TheTargetModulesAllAreRecordedAsAllNotAsEveryFamilysNames()
    {
        // "all" resolves per model (Phi-3's four, the others' seven): run.json says "all", not the nine names of every family
        var schema = JobSchema.Of<Irr.Realign.SafetyVectorJob>();
        var bind = (string? modules) => schema.Fingerprint(schema.Bind(new Dictionary<string, IReadOnlyList<string>>(
            modules is null ? [] : [new("modules", [modules])]) { ["aligned"] = ["a"], ["unaligned"] = ["u"], ["output"] = ["v.safetensors"] }));
        Assert.Equal("all", (string)bind(null)["modules"]!);
        Assert.Equal("all", (string)bind("all")["modules"]!);
        Assert.Equal(["q_proj", "v_proj"], bind("v_proj,q_proj")["modules"]!.AsArray().Select(x => (string)x!));
    }

    [Fact]
    public void EvalSafetysTimeoutsAndConcurrencyAreOutsideItsFingerprint()
    {
        var schema = JobSchema.Of<Irr.Eval.EvalSafetyJob>();
        var keys = schema.Fingerprint(schema.Bind(new Dictionary<string, IReadOnlyList<string>> { ["output"] = ["o"], ["model"] = ["m"], ["prompts"] = ["p.json"] }))
            .Select(kv => kv.Key).ToList();
        Assert.Contains("max-new-tokens", keys);
        Assert.Contains("prompts", keys);
        foreach (string how in new[] { "judge-timeout", "judge-concurrency", "engine-timeout", "engine-concurrency", "output" })
            Assert.DoesNotContain(how, keys);
    }
}
