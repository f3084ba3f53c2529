using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Jobs;
using Irr.Realign;
using Irr.Tests.Cli;

namespace Irr.Tests.Realign;

/// <summary>SweepJob: the selection rule on hand-made points, resuming a sweep of tiny chat models, and the job's own checks.</summary>
public class SweepTests
{
    private static SweepPoint Point(string label, double s, double harmful, double task, bool control = false) =>
        new(label, control ? "random-at-count" : "irr", s, control, 10, 100, harmful, task);

    [Fact]
    public void BaselineSettingsReadAsPeopleWriteThemAndLabelsKeepTheirForm()
    {
        // Hand-written: the docs' and the released scripts' ρ = 1e-5, and ordinary decimals unchanged.
        Assert.Equal("Antidote at ρ = 1e-5", SweepBaselines.Antidote.Describe(1e-5));
        Assert.Equal("RESTA at γ = 0.5", SweepBaselines.Resta.Describe(0.5));
        Assert.Equal("2.5e-7", SweepBaseline.Readable(2.5e-7));
        Assert.Equal("1e21", SweepBaseline.Readable(1e21));
        Assert.Equal("0.01", SweepBaseline.Readable(0.01));
        Assert.Equal("antidote-r1E-05", SweepBaselines.Antidote.Label(1e-5));   // the point's directory name, as earlier sweeps wrote it
    }

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

    // A point with the counts behind its harmful rate (task score out of 100 examples).
    private static SweepPoint Counted(string label, double s, int harmful, int judged, double task) =>
        Point(label, s, (double)harmful / judged, task) with { Counts = new SweepCounts(harmful, judged, (int)Math.Round(100 * task), 100) };

    [Fact]
    public void TheConservativeRuleQualifiesOnTheUpperBoundOfTheHarmfulRate()
    {
        // θ_A at 2% with 5 points allowed: the bound is 7%. Upper bounds of the 95% Wilson intervals, from statsmodels 0.13.5
        // (proportion_confint(k, 200, method="wilson")): 2/200 → 3.57%, 12/200 → 10.19%, 30/200 → 20.61%.
        SweepPoint[] points = [Counted("irr-s0", 0, 2, 200, 0.60), Counted("irr-s0.5", 0.5, 12, 200, 0.80), Counted("irr-s0.9", 0.9, 30, 200, 0.95)];
        // The default rule takes s = 0.5 (6% ≤ 7%); the conservative one does not (10.19% > 7%) and takes s = 0 (3.57%).
        Assert.Equal("irr-s0.5", SweepSelection.Choose(points, 0.02, 0.05).Point.Label);
        var conservative = SweepSelection.Choose(points, 0.02, 0.05, SweepSelection.Conservative);
        Assert.Equal("irr-s0", conservative.Point.Label);
        Assert.True(conservative.Qualified);
        Assert.Equal(SweepSelection.Conservative, conservative.Rule);
        Assert.Equal("irr-s0 has the highest task score (60.0%) among the 1 of 3 IRR points whose harmful rate's 95% upper bound is at most 7.0% " +
                     "(θ_A 2.0% + 5.0%); its 95% upper bound: 3.6%", conservative.Reason);

        // On 20 prompts even 0 harmful has an upper bound of 16.11%: nothing qualifies under a 7% bound, and the safest point
        // (by its rate, as the default rule's fallback) is taken; the default rule takes s = 0.5 at 5%.
        SweepPoint[] few = [Counted("irr-s0", 0, 0, 20, 0.5), Counted("irr-s0.5", 0.5, 1, 20, 0.9), Counted("irr-s0.9", 0.9, 3, 20, 1.0)];
        Assert.Equal("irr-s0.5", SweepSelection.Choose(few, 0.02, 0.05).Point.Label);
        var none = SweepSelection.Choose(few, 0.02, 0.05, SweepSelection.Conservative);
        Assert.False(none.Qualified);
        Assert.Equal("irr-s0", none.Point.Label);
        Assert.Equal("no IRR point has a harmful rate's 95% upper bound of at most 7.0% (θ_A 2.0% + 5.0%); irr-s0 is the safest (0.0% harmful; " +
                     "its 95% upper bound: 16.1%)", none.Reason);

        // The rule needs the counts, and a rule's name.
        Assert.Contains("irr-s0 has none", Assert.Throws<ArgumentException>(() => SweepSelection.Choose([Point("irr-s0", 0, 0, 1)], 0, 0.05, SweepSelection.Conservative)).Message);
        Assert.Throws<ArgumentException>(() => SweepSelection.Choose(points, 0, 0.05, "strict"));
        // The baselines are chosen by the same rule.
        SweepPoint[] resta = [.. points.Select(p => p with { Method = SweepBaselines.Resta.Method, Label = p.Label.Replace("irr-s", "resta-g") })];
        Assert.Equal("resta-g0", SweepSelection.ChooseBaseline(resta, SweepBaselines.Resta.Method, 0.02, 0.05, SweepSelection.Conservative)!.Point.Label);
    }

    [Fact]
    public void ARerunSkipsWhatIsDoneWithTheSameOptions()
    {
        using var w = new SweepWorld();
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

        // An input replaced in place (a new modification time) is noticed: the points are redone, the references are not.
        File.SetLastWriteTimeUtc(w.Fisher, DateTime.UtcNow.AddMinutes(1));
        var touched = (w.Job(sweep, 0.5) with { Realign = w.Job(sweep).Realign with { NSamples = 3 } }).Run();
        Assert.Equal(1, touched.Realigned);
        Assert.Equal(2, touched.Resumed);
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
        Assert.Equal("sweep: rule must be default or conservative, not 'strict'", Refused(job with { Rule = "strict" }));
        Assert.Equal("sweep: blocksize must be at least 1, not 0", Refused(job with { Realign = job.Realign with { BlockSize = 0 } }));
        // "judge must be keyword or http" is the command line's (a JudgeOptions is one or the other): SweepCommandTests.AnUnknownJudgeIsRefusedBeforeAnyWork.
        Assert.Equal("sweep: task-metric must be exact, contains, gsm8k or choice, not \"bleu\"", Refused(job with { Task = job.Task with { Metric = "bleu" } }));
        Assert.Equal("sweep: harmful-val is required (harmful prompt sets of the validation split)", Refused(job with { Safety = job.Safety with { Prompts = [] } }));
        Assert.Equal(["a", "f", "v", "c", "h", "t"], job.Inputs);
    }

    [Fact]
    public void TheRuleOnAHandMadeSweepJson()
    {
        using var dir = new Irr.Tests.IO.TempDir();
        // θ_A at 4%: the bound is 9% with the file's 0.05. Qualifying IRR points: s=0 (0%, task 60%), s=0.5 (8%, task 90%);
        // s=0.7 has the best task score but 20% harmful; the control at s=0.5 is the best of all and must be ignored.
        File.WriteAllText(dir["sweep.json"], """
            {"max_harmful_increase": 0.05,
             "references": {"aligned": {"harmful_rate": 0.04, "task_score": 0.1}, "finetuned": {"harmful_rate": 1, "task_score": 1}},
             "points": [
               {"label": "irr-s0",      "method": "irr", "sparsity": 0,   "is_control": false, "removed": 600, "parameters": 1000, "harmful_rate": 0,    "task_score": 0.6},
               {"label": "random-s0",   "method": "irr", "sparsity": 0,   "is_control": true,  "removed": 600, "parameters": 1000, "harmful_rate": 0.5,  "task_score": 0.7},
               {"label": "irr-s0.5",    "method": "irr", "sparsity": 0.5, "is_control": false, "removed": 300, "parameters": 1000, "harmful_rate": 0.08, "task_score": 0.9},
               {"label": "random-s0.5", "method": "irr", "sparsity": 0.5, "is_control": true,  "removed": 300, "parameters": 1000, "harmful_rate": 0,    "task_score": 1},
               {"label": "irr-s0.7",    "method": "irr", "sparsity": 0.7, "is_control": false, "removed": 180, "parameters": 1000, "harmful_rate": 0.2,  "task_score": 0.95}
             ]}
            """);
        var choice = SweepSelection.ChooseFrom(dir["sweep.json"]);
        Assert.Equal("irr-s0.5", choice.Point.Label);
        Assert.True(choice.Qualified);
        Assert.Equal(0.09, choice.Threshold, 12);
        // A tighter tolerance (2 points: bound 6%) leaves only s = 0.
        Assert.Equal("irr-s0", SweepSelection.ChooseFrom(dir["sweep.json"], maxIncrease: 0.02).Point.Label);
        // θ_A's 4% + 0 admits nothing: the safest IRR point, s = 0 (0%), and the choice says none qualified.
        var none = SweepSelection.ChooseFrom(dir["sweep.json"], maxIncrease: -0.05);
        Assert.False(none.Qualified);
        Assert.Equal("irr-s0", none.Point.Label);
        // This file has no counts (a sweep.json of irr before issue 28): the conservative rule says so in one line, naming the point.
        Assert.Equal("sweep.json: points[0]: no counts: the conservative rule qualifies on the harmful rate's interval, which a sweep.json " +
                     "written before irr recorded counts lacks; rerun the sweep into its directory, or choose with the default rule",
            Assert.Throws<IrrException>(() => SweepSelection.ChooseFrom(dir["sweep.json"], rule: SweepSelection.Conservative)).Message);
        Assert.Equal("sweep.json: no selection rule 'strict' (default or conservative)",
            Assert.Throws<IrrException>(() => SweepSelection.ChooseFrom(dir["sweep.json"], rule: "strict")).Message);
        File.WriteAllText(dir["bad.json"], """{"points": [{"label": "x"}]}""");
        Assert.Contains("bad.json", Assert.Throws<IrrException>(() => SweepSelection.ChooseFrom(dir["bad.json"])).Message);
    }

    [Fact]
    public void ARateExactlyAtTheBoundQualifies()
    {
        // θ_A at 0% with 5 points allowed: s = 0.3 at exactly 5% qualifies and has the better task score.
        using var dir = new Irr.Tests.IO.TempDir();
        File.WriteAllText(dir["sweep.json"], """
            {"max_harmful_increase": 0.05, "chosen": "irr-s0.3",
             "references": {"aligned": {"harmful_rate": 0}},
             "points": [
               {"label": "irr-s0",   "method": "irr", "sparsity": 0,   "is_control": false, "removed": 6, "parameters": 10, "harmful_rate": 0,    "task_score": 0.7},
               {"label": "irr-s0.3", "method": "irr", "sparsity": 0.3, "is_control": false, "removed": 4, "parameters": 10, "harmful_rate": 0.05, "task_score": 0.94},
               {"label": "irr-s0.5", "method": "irr", "sparsity": 0.5, "is_control": false, "removed": 3, "parameters": 10, "harmful_rate": 0.25, "task_score": 0.96}
             ]}
            """);
        Assert.Equal("irr-s0.3", SweepSelection.ChooseFrom(dir["sweep.json"]).Point.Label); // 5% is exactly at the bound
    }
}
