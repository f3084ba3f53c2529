using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Realign;
using Irr.Tests.Eval;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>irr sweep --point, --list-points and --collect: a sweep computed unit by unit as independent jobs, then collected.</summary>
public class SweepPointTests
{
    private static void Ok((int Code, string Out, string Err) r) => SweepCommandTests.Ok(r);

    private static JsonObject Json(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    // sweep.json without what depends on when and how it was computed: timings, counters, the units' record and DIR itself.
    internal static JsonObject Comparable(string sweep)
    {
        var json = Json(Path.Combine(sweep, SweepJob.FileName));
        foreach (string key in new[] { "seconds", "realigned", "resumed", "units", "units_computed", "units_done_earlier", "chosen_model", "irr_version" })
            Assert.True(json.Remove(key), key);
        return json;
    }

    [Fact]
    public void ASweepComputedUnitByUnitInAnyOrderThenCollectedEqualsOneRun()
    {
        using var w = new SweepWorld();
        string[] options = ["--sparsity", "0,0.5", "--random-control", "--seed", "3", "--resta-gamma", "0.5"];
        string whole = w.Dir["whole"], units = w.Dir["units"];
        Ok(CliRunner.Run(w.Sweep(whole, options)));

        var list = CliRunner.Run(w.Sweep(units, [.. options, "--list-points"]));
        Ok(list);
        string[] lines = list.Out.TrimEnd('\n').Split('\n');
        Assert.Equal("units: 5", lines[^1]);
        Assert.Equal(["0\tirr-s0,random-s0", "1\tirr-s0.5,random-s0.5", "2\tresta-g0.5", "3\taligned", "4\tfinetuned"], lines[..^1]);

        // Array tasks 0..4 as separate runs, in a shuffled order.
        int[] order = [.. Enumerable.Range(0, 5)];
        new Random(11).Shuffle(order);
        Assert.NotEqual([0, 1, 2, 3, 4], order);
        foreach (int k in order)
        {
            var r = CliRunner.Run(w.Sweep(units, [.. options, "--point", k.ToString()]));
            Ok(r);
            Assert.Contains($"unit {k} of 0..4", r.Err);
        }
        // No unit chose, placed, deleted or summed up anything: the collect step does.
        Assert.False(File.Exists(Path.Combine(units, SweepJob.FileName)));
        Assert.False(Directory.Exists(Path.Combine(units, "chosen")));
        foreach (string label in new[] { "irr-s0", "random-s0", "irr-s0.5", "random-s0.5", "resta-g0.5" })
            Assert.True(File.Exists(Path.Combine(units, "points", label, "model/model.safetensors")), label);

        var collect = CliRunner.Run(w.Sweep(units, [.. options, "--collect"]));
        Ok(collect);
        Assert.Contains("0 realignment(s) run, 7 point(s) or reference(s) done earlier and skipped", collect.Err);
        Assert.Contains("units: 5 done earlier (by earlier runs or --point jobs), 0 computed now", collect.Err);

        Assert.True(JsonNode.DeepEquals(Comparable(whole), Comparable(units)), $"{Comparable(whole)}\n---\n{Comparable(units)}");
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "chosen/model.safetensors")), File.ReadAllBytes(Path.Combine(units, "chosen/model.safetensors")));
        Assert.False(Directory.Exists(Path.Combine(units, "points/irr-s0/model"))); // the unchosen models are deleted at the end, as always
        var unitsJson = Json(Path.Combine(units, SweepJob.FileName))["units"]!.AsArray();
        Assert.Equal(5, unitsJson.Count);
        Assert.All(unitsJson, u => Assert.False((bool)u!["computed_now"]!));
        Assert.Equal("point 1", (string)unitsJson[1]!["computed_by"]!["random-s0.5"]!);
        Assert.Equal("point 4", (string)unitsJson[4]!["computed_by"]!["finetuned"]!);
    }

    [Fact]
    public void CollectAfterSomeUnitsComputesTheRest()
    {
        using var w = new SweepWorld();
        string sweep = w.Dir["sweep"];
        var first = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--point", "irr-s0.5"));
        Ok(first);
        Assert.Contains("irr-s0.5: harmful ", first.Out);
        Assert.Contains(Path.Combine(sweep, "points", "irr-s0.5"), first.Out);
        Assert.Contains("1 realignment(s) run", first.Err);
        Ok(CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--point", "aligned")));
        Assert.True(File.Exists(Path.Combine(sweep, "reference/aligned", SweepJob.ReferenceFileName)));
        Assert.False(Directory.Exists(Path.Combine(sweep, "reference/finetuned")));
        // The same unit again is done: nothing is redone.
        var again = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--point", "1"));
        Ok(again);
        Assert.Contains("0 realignment(s) run, 1 model(s) done earlier and skipped", again.Err);

        var collect = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--collect"));
        Ok(collect);
        Assert.Contains("1 realignment(s) run, 2 point(s) or reference(s) done earlier and skipped", collect.Err);
        Assert.Contains("units: 2 done earlier (by earlier runs or --point jobs), 2 computed now", collect.Err);
        var json = Json(Path.Combine(sweep, SweepJob.FileName));
        Assert.Equal(2, (int)json["units_computed"]!);
        var by = json["units"]!.AsArray().Select(u => (string)u!["computed_by"]!.AsObject().Single().Value!).ToList();
        Assert.Equal(["collect", "point 1", "point 2", "collect"], by);
        Assert.True(File.Exists(Path.Combine(sweep, "chosen/model.safetensors")));
    }

    [Fact]
    public void APointForARandomControlComputesItsIrrPointFirst()
    {
        using var w = new SweepWorld();
        string sweep = w.Dir["sweep"];
        var r = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0.5", "--random-control", "--point", "random-s0.5"));
        Ok(r);
        Assert.Contains("unit 0 of 0..2 (irr-s0.5, random-s0.5): 2 realignment(s) run", r.Err);
        Assert.True(r.Out.IndexOf("irr-s0.5:", StringComparison.Ordinal) < r.Out.IndexOf("random-s0.5:", StringComparison.Ordinal));
        Assert.Equal(RealignReport.ReadRemovalCounts(Path.Combine(sweep, "points/irr-s0.5/irr-report.json")),
            RealignReport.ReadRemovalCounts(Path.Combine(sweep, "points/random-s0.5/irr-report.json")));
        Assert.True(File.Exists(Path.Combine(sweep, "points/random-s0.5", SweepJob.PointFileName)));
        Assert.Equal("point 0", (string)Json(Path.Combine(sweep, "points/irr-s0.5", SweepJob.PointFileName))["computed_by"]!);
        // Nothing else: no reference, no choice, no chosen model, no sweep.json; the models stay for the collect step, and the
        // answers their evaluations generated in one cache file per model (a rerun after an interruption generates only the rest).
        Assert.Equal(["generation-cache", "points"], Directory.EnumerateFileSystemEntries(sweep).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["irr-s0.5.jsonl", "random-s0.5.jsonl"],
            Directory.EnumerateFiles(Path.Combine(sweep, "generation-cache")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.True(File.Exists(Path.Combine(sweep, "points/irr-s0.5/model/model.safetensors")));
    }

    [Theory]
    [InlineData("4", "error: sweep: point must be a unit's index, 0 to 3 (4 units), or one of its labels (irr-s0, irr-s0.5, aligned, …; list-points lists them), not '4'")]
    [InlineData("-1", "error: sweep: point must be a unit's index, 0 to 3 (4 units), or one of its labels (irr-s0, irr-s0.5, aligned, …; list-points lists them), not '-1'")]
    [InlineData("irr-s0.7", "error: sweep: point must be a unit's index, 0 to 3 (4 units), or one of its labels (irr-s0, irr-s0.5, aligned, …; list-points lists them), not 'irr-s0.7'")]
    public void APointOutOfRangeOrUnknownIsOneLineWithTheRange(string point, string message)
    {
        using var dir = new TempDir();
        SweepCommandTests.Refused(dir, message, [.. SweepCommandTests.Unread(dir, "0,0.5"), "--point", point]);
    }

    [Fact]
    public void PointWithCollectAndOtherMisusesAreRefusedBeforeAnyWork()
    {
        using var dir = new TempDir();
        void Refused(string message, params string[] more) => SweepCommandTests.Refused(dir, message, [.. SweepCommandTests.Unread(dir, "0,0.5"), .. more]);
        Refused("error: sweep: point and collect are exclusive: compute units with point, then collect them in one run without point", "--point", "0", "--collect");
        Refused("error: sweep: list-points does no work; give it without point and collect", "--list-points", "--point", "0");
        Refused("error: sweep: json applies to list-points only", "--json");
        // The options are checked in full, in every array task and in --list-points alike.
        Refused("error: sweep: blocksize must be at least 1, not 0", "--point", "0", "--blocksize", "0");
        Refused("error: sweep: blocksize must be at least 1, not 0", "--list-points", "--blocksize", "0");
    }

    [Fact]
    public void AMissingInputFailsEveryUnitAndListPointsBeforeAnyWork()
    {
        using var w = new SweepWorld();
        string sweep = w.Dir["sweep"];
        string[] Missing(params string[] more) => [.. w.Sweep(sweep, ["--sparsity", "0,0.5", .. more]).Select(a => a == w.Finetuned ? w.Dir["gone"] : a)];
        // θ_F is read only by the IRR points and the finetuned reference; the aligned unit and list-points fail for it all the same.
        foreach (string[] args in new[] { Missing("--list-points"), Missing("--point", "aligned"), Missing("--point", "0") })
        {
            var r = CliRunner.Run(args);
            Assert.Equal(2, r.Code);
            Assert.Equal($"error: sweep: {w.Dir["gone"]}: no such file or directory", r.Err.TrimEnd('\n'));
            Assert.False(Directory.Exists(sweep)); // nothing made, not even DIR/points
        }
    }

    [Fact]
    public void ListPointsPrintsTheUnitsWithoutAnyWork()
    {
        using var dir = new TempDir();
        // Inputs must exist, but nothing is read: empty files and directories do. A LoRA fine-tune, to have Safe LoRA points too.
        foreach (string d in new[] { "a", "l" }) Directory.CreateDirectory(dir[d]);
        foreach (string f in new[] { "v", "f", "c", "h", "t" }) File.WriteAllText(dir[f], "");
        string[] args = ["sweep", "--base", dir["a"], "--adapter", dir["l"], "--safety-vector", dir["v"], "--fisher", dir["f"], "--calibration", dir["c"],
            "--harmful-val", dir["h"], "--task-val", dir["t"], "--task-metric", "exact", "--sparsity", "0.5,0", "--random-control",
            "--resta-gamma", "1,0.25", "--safelora-threshold", "0.5", "-o", dir["out"], "--list-points"];
        var r = CliRunner.Run(args);
        Ok(r);
        Assert.Equal("0\tirr-s0.5,random-s0.5\n1\tirr-s0,random-s0\n2\tresta-g1\n3\tresta-g0.25\n4\tsafelora-t0.5\n5\taligned\n6\tfinetuned\nunits: 7\n",
            r.Out.ReplaceLineEndings("\n"));
        var json = CliRunner.Run([.. args, "--json"]);
        Ok(json);
        var parsed = JsonNode.Parse(json.Out)!;
        Assert.Equal(7, (int)parsed["count"]!);
        Assert.Equal("""{"index":4,"labels":["safelora-t0.5"]}""", parsed["units"]![4]!.ToJsonString());
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void EachUnitHasItsOwnJudgeCache()
    {
        var unit = new SweepUnit(1, ["irr-s0.5", "random-s0.5"]);
        Assert.Equal(Path.Combine("/d", "judge-cache.irr-s0.5.jsonl"), SweepJob.UnitJudgeCache(Path.Combine("/d", "judge-cache.jsonl"), unit));
        Assert.Equal(Path.Combine("/fast", "verdicts.irr-s0.5"), SweepJob.UnitJudgeCache(Path.Combine("/fast", "verdicts"), unit));

        // With an HTTP judge, every unit computed alone appends to its own file; the collect step to DIR/judge-cache.jsonl.
        using var w = new SweepWorld();
        using var server = new FakeJudgeServer((body, _) => new(Content: "[[A]]"));
        string sweep = w.Dir["sweep"];
        string[] Args(params string[] more) => HttpArgs(sweep, more);
        string[] HttpArgs(string output, params string[] more) => w.Sweep(output, ["--sparsity", "0", "--judge", "http", "--judge-url", server.Url + "/v1", "--judge-model", "tiny-judge",
            "--judge-protocol", "verdict", "--judge-timeout", "60", .. more]);
        var r = CliRunner.Run(Args("--point", "0"));
        Ok(r);
        Assert.Contains($"judge cache {Path.Combine(sweep, "judge-cache.irr-s0.jsonl")}", r.Err);
        Ok(CliRunner.Run(Args("--point", "aligned")));
        Assert.True(File.Exists(Path.Combine(sweep, "judge-cache.irr-s0.jsonl")));
        Assert.True(File.Exists(Path.Combine(sweep, "judge-cache.aligned.jsonl")));
        Assert.False(File.Exists(Path.Combine(sweep, "judge-cache.jsonl")));
        int asked = server.Requests;
        Assert.Equal(6, asked); // 3 harmful prompts for each of two models

        Ok(CliRunner.Run(Args("--collect")));
        Assert.Equal(asked + 3, server.Requests); // θ_F only
        Assert.Equal(3, File.ReadAllLines(Path.Combine(sweep, "judge-cache.jsonl")).Length);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(sweep, "judge-cache.aligned.jsonl")).Length);

        // A --judge-cache given for all gets the unit's label too.
        Ok(CliRunner.Run(HttpArgs(w.Dir["other"], "--point", "finetuned", "--judge-cache", w.Dir["mine.jsonl"])));
        Assert.True(File.Exists(w.Dir["mine.finetuned.jsonl"]));
        Assert.False(File.Exists(w.Dir["mine.jsonl"]));
    }

    [Fact]
    public async Task UnitsRunningAtOnceIntoOneDirectoryDoNotTripOverEachOther()
    {
        using var w = new SweepWorld();
        string sweep = w.Dir["sweep"];
        var job = w.Job(sweep, 0, 0.5);
        // A reference first: it leaves DIR/points (made before anything else), so a later task does not take DIR for an unrelated directory.
        Assert.Equal(0, (job with { Point = "finetuned" }).RunUnit().Realigned);
        Assert.True(Directory.Exists(Path.Combine(sweep, "points")));
        // Then three jobs at once.
        var units = await Task.WhenAll(new[] { "0", "1", "aligned" }.Select(k => Task.Run(() => (job with { Point = k }).RunUnit())));
        Assert.Equal([1, 1, 0], units.Select(u => u.Realigned));
        var collect = (job with { Collect = true }).Run();
        Assert.Equal(0, collect.Realigned);
        Assert.Equal(4, collect.UnitsDoneEarlier);
        Assert.Equal(0, collect.UnitsComputed);
    }
}
