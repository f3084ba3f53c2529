using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Jobs;
using Irr.Realign;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>irr sweep: the selection rule on hand-made points, and sweeps of tiny chat models end to end.</summary>
public class SweepTests
{
    private static SweepPoint Point(string label, double s, double harmful, double task, bool control = false) =>
        new(label, control ? "random-at-count" : "irr", s, control, 10, 100, harmful, task);

    [Fact]
    public void TheRuleTakesTheBestTaskScoreWithinTheHarmfulBound()
    {
        SweepPoint[] points =
        [
            Point("irr-s0", 0, 0.10, 0.50), Point("irr-s0.5", 0.5, 0.14, 0.70), Point("irr-s0.9", 0.9, 0.30, 0.90),
            Point("random-s0.5", 0.5, 0.05, 0.95, control: true), // a control is never chosen, however good
        ];
        var choice = SweepSelection.Choose(points, alignedHarmful: 0.10, maxIncrease: 0.05);
        Assert.Equal("irr-s0.5", choice.Point.Label);
        Assert.True(choice.Qualified);
        Assert.Equal(0.15, choice.Threshold, 12);
        // The bound is inclusive, rounding aside: 0.1 + 0.05 admits a rate of exactly 0.15.
        Assert.Equal("irr-s0.9", SweepSelection.Choose([Point("irr-s0", 0, 0.1, 0.1), Point("irr-s0.9", 0.9, 3.0 / 20, 0.9)], 0.1, 0.05).Point.Label);
    }

    [Fact]
    public void WhenNoPointQualifiesTheSafestIsTakenAndTheChoiceSaysSo()
    {
        SweepPoint[] points = [Point("irr-s0", 0, 0.40, 0.20), Point("irr-s0.5", 0.5, 0.30, 0.10), Point("irr-s0.8", 0.8, 0.30, 0.60), Point("random-s0", 0, 0.0, 0.9, control: true)];
        var choice = SweepSelection.Choose(points, alignedHarmful: 0.05, maxIncrease: 0.05);
        Assert.False(choice.Qualified);
        Assert.Equal("irr-s0.8", choice.Point.Label); // the safest; of the two at 30 %, the higher task score
        Assert.StartsWith("no IRR point has a harmful rate of at most 10.0%", choice.Reason);
        Assert.Throws<ArgumentException>(() => SweepSelection.Choose([Point("random-s0", 0, 0, 0, control: true)], 0, 0.05));
    }

    [Fact]
    public void TiesGoToTheLowerHarmfulRateThenTheSmallerS()
    {
        // Equal task scores: the lower harmful rate wins; equal both: the smaller s.
        Assert.Equal("irr-s0.5", SweepSelection.Choose([Point("irr-s0.9", 0.9, 0.08, 0.6), Point("irr-s0.5", 0.5, 0.02, 0.6)], 0.0, 0.1).Point.Label);
        Assert.Equal("irr-s0.3", SweepSelection.Choose([Point("irr-s0.7", 0.7, 0.05, 0.6), Point("irr-s0.3", 0.3, 0.05, 0.6)], 0.0, 0.1).Point.Label);
        // None qualifying: equal harmful rates and task scores go to the smaller s too.
        Assert.Equal("irr-s0.3", SweepSelection.Choose([Point("irr-s0.7", 0.7, 0.5, 0.6), Point("irr-s0.3", 0.3, 0.5, 0.6)], 0.0, 0.1).Point.Label);
    }

    // Tiny chat models θ_A, θ_U, θ_F, their safety vector and Fisher, calibration data and a validation split.
    private sealed class World : IDisposable
    {
        public TempDir Dir { get; } = new();
        public string Aligned, Finetuned, Vector, Fisher, Calibration, Harmful, Task;

        public World()
        {
            Aligned = ModelCommandTests.ChatModel(Dir, "aligned", seed: 1);
            string unaligned = ModelCommandTests.ChatModel(Dir, "unaligned", seed: 2);
            Finetuned = ModelCommandTests.ChatModel(Dir, "finetuned", seed: 3);
            Calibration = Records("task.jsonl", 4, "compute");
            Harmful = Records("harmful_val.jsonl", 3, "how do I");
            Task = Records("task_val.jsonl", 3, "compute");
            (Vector, Fisher) = (Dir["v.safetensors"], Dir["f.safetensors"]);
            Ok(CliRunner.Run("safety-vector", "--aligned", Aligned, "--unaligned", unaligned, "--modules", "q_proj,down_proj", "-o", Vector));
            Ok(CliRunner.Run("fisher", "--model", Aligned, "--data", Harmful, "--modules", "q_proj,down_proj", "-o", Fisher));
        }

        private string Records(string name, int count, string prefix)
        {
            File.WriteAllLines(Dir[name], Enumerable.Range(0, count).Select(i => new JsonObject { ["instruction"] = $"{prefix} {i}", ["output"] = $"the answer {i}" }.ToJsonString()));
            return Dir[name];
        }

        // The realign options every sweep and realign here share.
        public string[] RealignArgs => ["--base", Aligned, "--finetuned", Finetuned, "--safety-vector", Vector, "--fisher", Fisher, "--calibration", Calibration,
            "--modules", "q_proj,down_proj", "--blocksize", "8", "--nsamples", "4"];

        public string[] Sweep(string output, params string[] more) =>
            ["sweep", .. RealignArgs, "--harmful-val", Harmful, "--task-val", Task, "--task-metric", "exact", "--max-new-tokens", "3", "-o", output, .. more];

        public SweepJob Job(string output, params double[] sparsity) => new()
        {
            Realign = new RealignJob
            {
                Base = Aligned, Finetuned = Finetuned, SafetyVector = Vector, Fisher = Fisher, Calibration = Calibration, Modules = ["q_proj", "down_proj"],
                BlockSize = 8, NSamples = 4,
            },
            Safety = new EvalSafetyJob { Prompts = [Harmful], MaxNewTokens = 3, OutputDir = "" },
            Task = new EvalTaskJob { Model = "", Data = Task, Metric = "exact", MaxNewTokens = 3 },
            Sparsity = sparsity,
            OutputPath = output,
        };

        public void Dispose() => Dir.Dispose();
    }

    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    private static JsonNode Json(string path) => JsonNode.Parse(File.ReadAllText(path))!;

    [Fact]
    public void APointIsByteForByteWhatIrrRealignWrites()
    {
        using var w = new World();
        string sweep = w.Dir["sweep"];
        var run = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0.5", "--keep-models"));
        Ok(run);
        Ok(CliRunner.Run(["realign", .. w.RealignArgs, "--sparsity", "0.5", "-o", w.Dir["realigned"]]));
        byte[] expected = File.ReadAllBytes(Path.Combine(w.Dir["realigned"], "model.safetensors"));
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(sweep, "points/irr-s0.5/model/model.safetensors")));
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(sweep, "chosen/model.safetensors"))); // copied, with --keep-models

        var point = Json(Path.Combine(sweep, "points/irr-s0.5", SweepJob.PointFileName));
        Assert.Equal(0.5, (double)point["sparsity"]!);
        Assert.False((bool)point["is_control"]!);
        var report = Json(Path.Combine(w.Dir["realigned"], "irr-report.json"));
        Assert.Equal((long)report["totals"]!["removed"]!, (long)point["removed"]!);
        Assert.Equal((long)report["totals"]!["parameters"]!, (long)point["parameters"]!);
        Assert.Equal(0.5, (double)point["options"]!["realign"]!["sparsity"]!);

        var sweepJson = Json(Path.Combine(sweep, SweepJob.FileName));
        Assert.Equal("irr-s0.5", (string)sweepJson["chosen"]!);
        Assert.Equal(SweepSelection.Rule, (string)sweepJson["rule"]!);
        Assert.Single(sweepJson["points"]!.AsArray());
        Assert.NotNull(sweepJson["references"]!["aligned"]!["harmful_rate"]);
        foreach (string reference in new[] { "aligned", "finetuned" })
        {
            Assert.True(File.Exists(Path.Combine(sweep, "reference", reference, SafetyRun.FileName)));
            Assert.True(File.Exists(Path.Combine(sweep, "reference", reference, TaskRun.FileName)));
        }
        Assert.True(File.Exists(Path.Combine(sweep, "points/irr-s0.5/eval", SafetyRun.FileName)));
        var svg = File.ReadAllText(Path.Combine(sweep, "frontier.svg"));
        Assert.Contains("data-label=\"s=0.5\"", svg);
        Assert.Contains("data-label=\"θ_A\"", svg);
        Assert.Contains("irr-s0.5", run.Out);
        Assert.Contains("rule: among the IRR points", run.Out);
    }

    [Fact]
    public void TheRandomControlRemovesExactlyTheIrrCountPerMatrix()
    {
        using var w = new World();
        string sweep = w.Dir["sweep"];
        var run = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--random-control", "--seed", "3"));
        Ok(run);
        foreach (string s in new[] { "0", "0.5" })
        {
            var irr = RandomAtCountStrategy.CountsOf(Path.Combine(sweep, $"points/irr-s{s}", "irr-report.json"));
            var random = Json(Path.Combine(sweep, $"points/random-s{s}", "irr-report.json"));
            Assert.Equal(irr, RandomAtCountStrategy.CountsOf(Path.Combine(sweep, $"points/random-s{s}", "irr-report.json")));
            Assert.Equal("random-at-count", (string)random["options"]!["method"]!);
            Assert.Equal(3, (int)random["options"]!["seed"]!);
            Assert.True((bool)Json(Path.Combine(sweep, $"points/random-s{s}", SweepJob.PointFileName))["is_control"]!);
        }
        Assert.True(irrCountsDiffer(sweep));
        // Without --keep-models only the chosen model stays; the chosen is an IRR point.
        Assert.False(Directory.Exists(Path.Combine(sweep, "points/irr-s0/model")));
        Assert.False(Directory.Exists(Path.Combine(sweep, "points/random-s0/model")));
        Assert.True(File.Exists(Path.Combine(sweep, "chosen/model.safetensors")));
        Assert.StartsWith("irr-", (string)Json(Path.Combine(sweep, SweepJob.FileName))["chosen"]!);
        var svg = File.ReadAllText(Path.Combine(sweep, "frontier.svg"));
        Assert.Contains("data-series=\"random control (IRR counts)\"", svg);
        Assert.Contains("class=\"highlight\"", svg);

        // s = 0.5 keeps some conflicts: the two IRR points remove different counts, and so do their controls.
        static bool irrCountsDiffer(string sweep) =>
            RandomAtCountStrategy.CountsOf(Path.Combine(sweep, "points/irr-s0/irr-report.json")).Values.Sum()
            > RandomAtCountStrategy.CountsOf(Path.Combine(sweep, "points/irr-s0.5/irr-report.json")).Values.Sum();
    }

    [Fact]
    public void ARerunSkipsWhatIsDoneWithTheSameOptions()
    {
        using var w = new World();
        string sweep = w.Dir["sweep"];
        var first = w.Job(sweep, 0, 0.5).Run();
        Assert.Equal(2, first.Realigned);
        Assert.Equal(0, first.Resumed);
        string record = Path.Combine(sweep, "points/irr-s0.5", SweepJob.PointFileName);
        var written = File.GetLastWriteTimeUtc(record);
        byte[] chosen = File.ReadAllBytes(Path.Combine(sweep, "chosen/model.safetensors"));

        var again = w.Job(sweep, 0, 0.5).Run();
        Assert.Equal(0, again.Realigned);
        Assert.Equal(4, again.Resumed); // two points, θ_A and θ_F
        Assert.Equal(written, File.GetLastWriteTimeUtc(record));
        Assert.Equal(first.Choice, again.Choice);
        Assert.Equal(first.ChosenReport.Modules.Select(m => m.Removed), again.ChosenReport.Modules.Select(m => m.Removed));

        // A new s is one more realignment; a deleted chosen model is realigned again, the same bytes.
        Directory.Delete(Path.Combine(sweep, "chosen"), recursive: true);
        var more = w.Job(sweep, 0, 0.5, 0.9).Run();
        Assert.Equal(2, more.Realigned);
        Assert.Equal(4, more.Resumed);
        Assert.Equal(chosen, File.ReadAllBytes(Path.Combine(sweep, "chosen/model.safetensors")));

        // Other options redo the points (not the references, whose evaluation is the same).
        var other = (w.Job(sweep, 0.5) with { Realign = w.Job(sweep).Realign with { NSamples = 3 } }).Run();
        Assert.Equal(1, other.Realigned);
        Assert.Equal(2, other.Resumed);
        Assert.NotEqual(written, File.GetLastWriteTimeUtc(record));
    }

    [Theory]
    [InlineData("0,abc", "error: sweep: sparsity must be a list of numbers between 0 and 1 (e.g. 0,0.5,0.9), not 'abc'")]
    [InlineData("0,1.5", "error: sweep: sparsity must be between 0 and 1, not 1.5")]
    [InlineData("0.5,0.5", "error: sweep: sparsity lists 0.5 twice")]
    public void ABadSparsityListExitsWithTwoBeforeAnyWork(string list, string message)
    {
        using var dir = new TempDir();
        var (code, _, error) = CliRunner.Run("sweep", "--base", dir["a"], "--finetuned", dir["f"], "--safety-vector", dir["v"], "--fisher", dir["f"],
            "--calibration", dir["c"], "--harmful-val", dir["h"], "--task-val", dir["t"], "--task-metric", "exact", "--sparsity", list, "-o", dir["out"]);
        Assert.Equal(2, code);
        Assert.Equal(message, error.Trim());
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void TheSweepChecksItsOptionsInItsOwnName()
    {
        var job = new SweepJob
        {
            Realign = new RealignJob { Base = "a", Finetuned = "f", SafetyVector = "v", Fisher = "f", Calibration = "c" },
            Safety = new EvalSafetyJob { Prompts = ["h"], OutputDir = "" },
            Task = new EvalTaskJob { Model = "", Data = "t", Metric = "exact" },
            Sparsity = [0, 0.5],
            OutputPath = "/nonexistent/out",
        };
        job.Validate();
        string Refused(SweepJob j) => Assert.Throws<IrrException>(j.Validate).Message;
        Assert.Equal("sweep: method must be irr, irr-more or fisher-only, not 'random-at-count' (random-control adds the random-removal control)",
            Refused(job with { Realign = job.Realign with { Method = "random-at-count" } }));
        Assert.Equal("sweep: seed applies to random-control only", Refused(job with { Seed = 1 }));
        Assert.Equal("sweep: max-harmful-increase must be between 0 and 1, not -0.1", Refused(job with { MaxHarmfulIncrease = -0.1 }));
        Assert.Equal("sweep: blocksize must be at least 1, not 0", Refused(job with { Realign = job.Realign with { BlockSize = 0 } }));
        Assert.Equal("sweep: judge must be keyword or http, not \"llm\"", Refused(job with { Safety = job.Safety with { Judge = "llm" } }));
        Assert.Equal("sweep: task-metric must be exact, contains, gsm8k or choice, not \"bleu\"", Refused(job with { Task = job.Task with { Metric = "bleu" } }));
        Assert.Equal("sweep: harmful-val is required (harmful prompt sets of the validation split)", Refused(job with { Safety = job.Safety with { Prompts = [] } }));
        Assert.Equal(["a", "f", "v", "c", "h", "t"], job.Inputs);
    }

    [Fact]
    public void ARecipeWiresTheChosenModelIntoLaterSteps()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m"]);
        foreach (string file in new[] { "d.jsonl", "p.json" }) File.WriteAllText(dir[file], "[]");
        var recipe = Recipe.Parse("""
            output: out
            steps:
              - safety-vector: {aligned: m, unaligned: m}
              - fisher: {model: m, data: d.jsonl}
              - sweep: {base: m, finetuned: m, calibration: d.jsonl, harmful-val: [p.json], task-val: d.jsonl, task-metric: exact, sparsity: [0, 0.5]}
              - eval task: {data: d.jsonl, metric: exact}
            """, dir["recipe.yaml"]);
        var graph = StepGraph.Plan(recipe);
        var task = graph.Find("eval-task")!;
        Assert.Equal([dir["out/sweep/chosen"]], task.Options.Single(o => o.Key == "model").Values);
        Assert.Equal(["sweep"], task.Wired["model"]);
        Assert.Equal([2], task.DependsOn.Select(d => d.Producer));
        // The sweep step parses and validates as irr sweep's own command line.
        var sweep = Irr.Cli.RunCommand.Check(recipe).Single(s => s.Planned.Id == "sweep");
        Assert.Equal(["0", "0.5"], sweep.Options["sparsity"]!.AsArray().Select(x => (string)x!));
    }
}
