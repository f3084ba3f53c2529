using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.IO;
using Irr.Jobs;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>irr sweep end to end on tiny chat models: a point is irr realign's output, the random control, bad lists, recipes.</summary>
public class SweepCommandTests
{
    internal static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    private static JsonNode Json(string path) => JsonNode.Parse(File.ReadAllText(path))!;

    [Fact]
    public void APointIsByteForByteWhatIrrRealignWrites()
    {
        using var w = new SweepWorld();
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

    // A model's outcomes as its evaluation files have them: per prompt 1 harmful, 0 safe, null unknown; per example 1 correct, 0 not.
    private static (List<int?> Harmful, List<int> Task) Outcomes(string evalDir) =>
        (File.ReadLines(Path.Combine(evalDir, "responses.jsonl")).Select(l => (string)JsonNode.Parse(l)!["verdict"]! switch { "harmful" => 1, "safe" => (int?)0, _ => null }).ToList(),
         File.ReadLines(Path.Combine(evalDir, "predictions.jsonl")).Select(l => (bool)JsonNode.Parse(l)!["correct"]! ? 1 : 0).ToList());

    [Fact]
    public void EveryModelCarriesItsCountsAndIntervalsAndTheRuleIsRecorded()
    {
        using var w = new SweepWorld();
        string sweep = w.Dir["sweep"];
        var run = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--rule", "conservative"));
        Ok(run);
        Assert.Contains("95% CI", run.Out);
        Assert.Contains("rule: " + SweepSelection.ConservativeRule, System.Text.RegularExpressions.Regex.Replace(run.Out, @"\s+", " ")); // the console wraps lines
        var json = Json(Path.Combine(sweep, SweepJob.FileName));
        Assert.Equal(SweepSelection.ConservativeRule, (string)json["rule"]!);
        Assert.Equal("conservative", (string)json["rule_name"]!);
        // Re-choosing from the file takes its rule, and finds the sweep's choice.
        Assert.Equal((string)json["chosen"]!, SweepSelection.ChooseFrom(Path.Combine(sweep, SweepJob.FileName)).Point.Label);

        var aligned = Outcomes(Path.Combine(sweep, "reference/aligned"));
        var finetuned = Outcomes(Path.Combine(sweep, "reference/finetuned"));
        var models = json["points"]!.AsArray().Select(p => (Node: p!, Eval: Path.Combine(sweep, "points", (string)p!["label"]!, "eval")))
            .Append((json["references"]!["aligned"]!, Path.Combine(sweep, "reference/aligned")))
            .Append((json["references"]!["finetuned"]!, Path.Combine(sweep, "reference/finetuned")));
        foreach (var (node, eval) in models)
        {
            // The counts are those of the evaluation's own files; the intervals are Wilson's of those counts.
            var (harmful, task) = Outcomes(eval);
            var counts = node["counts"]!;
            Assert.Equal(harmful.Count(h => h == 1), (int)counts["harmful"]!);
            Assert.Equal(harmful.Count(h => h is not null), (int)counts["judged"]!);
            Assert.Equal(task.Sum(), (int)counts["task_correct"]!);
            Assert.Equal(task.Count, (int)counts["task_total"]!);
            Assert.Equal(Intervals.Wilson(harmful.Count(h => h == 1), harmful.Count(h => h is not null))!.Value.High, (double)node["harmful_rate_ci"]!["high"]!, 15);
            Assert.Equal(Intervals.Wilson(task.Sum(), task.Count)!.Value.Low, (double)node["task_score_ci"]!["low"]!, 15);
            Assert.Null(node["outcomes"]); // in point.json, not in sweep.json
            if (node["vs_aligned"] is not { } vs) continue; // a reference
            // point − θ_A, paired by prompt, with the seeded bootstrap; point − θ_F on the task likewise.
            var pairs = harmful.Zip(aligned.Harmful).Where(x => x.First is not null && x.Second is not null).Select(x => ((double)x.First!, (double)x.Second!)).ToList();
            Assert.Equal(pairs.Average(x => x.Item1 - x.Item2), (double)vs["harmful_rate"]!, 15);
            var ci = Intervals.PairedBootstrap(pairs, 10_000, 0)!.Value;
            Assert.Equal([ci.Low, ci.High], new[] { (double)vs["harmful_rate_ci"]!["low"]!, (double)vs["harmful_rate_ci"]!["high"]! });
            var taskPairs = task.Zip(finetuned.Task).Select(x => ((double)x.First, (double)x.Second)).ToList();
            var taskCi = Intervals.PairedBootstrap(taskPairs, 10_000, 0)!.Value;
            Assert.Equal([taskCi.Low, taskCi.High], new[] { (double)node["vs_finetuned"]!["task_score_ci"]!["low"]!, (double)node["vs_finetuned"]!["task_score_ci"]!["high"]! });
        }

        // A point record of a sweep made before outcomes were recorded: a rerun resumes it and reads them from its evaluation's files.
        string record = Path.Combine(sweep, "points/irr-s0.5", SweepJob.PointFileName);
        var old = JsonNode.Parse(File.ReadAllText(record))!.AsObject();
        Assert.NotNull(old["outcomes"]);
        old.Remove("outcomes");
        old.Remove("counts");
        File.WriteAllText(record, old.ToJsonString());
        var again = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5"));
        Ok(again);
        Assert.Contains("0 realignment(s) run, 4 point(s) or reference(s) done earlier and skipped", again.Err);
        var resumed = Json(Path.Combine(sweep, SweepJob.FileName));
        Assert.Equal("default", (string)resumed["rule_name"]!);
        Assert.Equal(json["points"]![1]!["counts"]!.ToJsonString(), resumed["points"]![1]!["counts"]!.ToJsonString());
    }

    [Fact]
    public void TheRuleIsOneOptionOfTheCommandLineAndOfARecipe()
    {
        using var dir = new TempDir();
        Refused(dir, "error: sweep: rule must be default or conservative, not 'strict'", [.. Unread(dir, "0"), "--rule", "strict"]);
        Directory.CreateDirectory(dir["m"]);
        foreach (string file in new[] { "d.jsonl", "p.json" }) File.WriteAllText(dir[file], "[]");
        var recipe = Recipe.Parse("""
            output: out
            steps:
              - sweep: {base: m, finetuned: m, safety-vector: m, fisher: m, calibration: d.jsonl, harmful-val: [p.json], task-val: d.jsonl, task-metric: exact, sparsity: [0], rule: conservative}
            """, dir["recipe.yaml"]);
        var sweep = Irr.Cli.RunCommand.Check(recipe).Single(s => s.Planned.Id == "sweep");
        Assert.Equal("conservative", (string)sweep.Options["rule"]!);
    }

    [Fact]
    public void TheRandomControlRemovesExactlyTheIrrCountPerMatrix()
    {
        using var w = new SweepWorld();
        string sweep = w.Dir["sweep"];
        var run = CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--random-control", "--seed", "3"));
        Ok(run);
        foreach (string s in new[] { "0", "0.5" })
        {
            var irr = RealignReport.ReadRemovalCounts(Path.Combine(sweep, $"points/irr-s{s}", "irr-report.json"));
            var random = Json(Path.Combine(sweep, $"points/random-s{s}", "irr-report.json"));
            Assert.Equal(irr, RealignReport.ReadRemovalCounts(Path.Combine(sweep, $"points/random-s{s}", "irr-report.json")));
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
            RealignReport.ReadRemovalCounts(Path.Combine(sweep, "points/irr-s0/irr-report.json")).Values.Sum()
            > RealignReport.ReadRemovalCounts(Path.Combine(sweep, "points/irr-s0.5/irr-report.json")).Values.Sum();
    }

    [Fact]
    public void AnUnrelatedDirectoryIsNotWrittenIntoAndAFailedSweepLeavesNothing()
    {
        using var w = new SweepWorld();
        // A non-empty directory that is not a sweep is refused, untouched.
        Directory.CreateDirectory(w.Dir["mine"]);
        File.WriteAllText(Path.Combine(w.Dir["mine"], "keep.txt"), "mine");
        var (code, _, error) = CliRunner.Run(w.Sweep(w.Dir["mine"], "--sparsity", "0"));
        Assert.Equal(2, code);
        Assert.Contains("is not a sweep directory", error);
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(w.Dir["mine"]).Select(Path.GetFileName));
        // A safety vector of other modules fails the first realignment: no output directory is left behind.
        var args = w.Sweep(w.Dir["failed"], "--sparsity", "0");
        args[Array.IndexOf(args, "q_proj,down_proj")] = "q_proj,v_proj";
        (code, _, error) = CliRunner.Run(args);
        Assert.Equal(2, code);
        Assert.Contains("lacks", error);
        Assert.False(Directory.Exists(w.Dir["failed"]));
    }

    [Theory]
    [InlineData("0,abc", "error: sweep: sparsity must be a list of numbers between 0 and 1 (e.g. 0,0.5,0.9), not 'abc'")]
    [InlineData("0,1.5", "error: sweep: sparsity must be between 0 and 1, not 1.5")]
    [InlineData("0.5,0.5", "error: sweep: sparsity lists 0.5 twice")]
    public void ABadSparsityListExitsWithTwoBeforeAnyWork(string list, string message)
    {
        using var dir = new TempDir();
        Refused(dir, message, Unread(dir, list));
    }

    // A sweep into DIR/out over inputs that do not exist: nothing is read when an option is refused.
    internal static string[] Unread(TempDir dir, string sparsity) =>
        ["sweep", "--base", dir["a"], "--finetuned", dir["f"], "--safety-vector", dir["v"], "--fisher", dir["f"], "--calibration", dir["c"],
            "--harmful-val", dir["h"], "--task-val", dir["t"], "--task-metric", "exact", "--sparsity", sparsity, "-o", dir["out"]];

    // The command line exits with 2 and this one line, and makes no DIR/out.
    internal static void Refused(TempDir dir, string message, string[] args)
    {
        var (code, _, error) = CliRunner.Run(args);
        Assert.Equal(2, code);
        Assert.Equal(message, error.Trim());
        Assert.False(Directory.Exists(dir["out"]));
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
        // As the sweep's schema binds it: a list of numbers (the command line's text before the sweep declared its options).
        Assert.Equal([0.0, 0.5], sweep.Options["sparsity"]!.AsArray().Select(x => (double)x!));
    }

    [Fact]
    public void BaselinesArePointsBesideIrrAndAtNoChangeTheyAreTheFineTune()
    {
        using var w = new SweepWorld();
        // RESTA at γ = 0 is θ_F itself, so its figures are θ_F's, evaluated apart as the reference.
        var full = CliRunner.Run(w.Sweep(w.Dir["full"], "--sparsity", "0,0.5", "--resta-gamma", "0,1"));
        Ok(full);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["full"], SweepJob.FileName)))!;
        var points = json["points"]!.AsArray();
        var g0 = points.Single(p => (string)p!["label"]! == "resta-g0")!;
        var finetuned = json["references"]!["finetuned"]!;
        Assert.Equal((double)finetuned["harmful_rate"]!, (double)g0["harmful_rate"]!);
        Assert.Equal((double)finetuned["task_score"]!, (double)g0["task_score"]!);
        Assert.StartsWith("irr-s", (string)json["chosen"]!);
        Assert.Contains((string)json["baselines"]!["resta"]!["chosen"]!, new[] { "resta-g0", "resta-g1" });
        Assert.Contains("resta at its best setting by the same rule:", full.Out);
        Assert.Contains("RESTA (by γ)", File.ReadAllText(Path.Combine(w.Dir["full"], "frontier.svg")));
        Assert.True(File.Exists(Path.Combine(w.Dir["full"], "points/resta-g1/baseline-report.json")));

        // Safe LoRA at τ = -1 projects nothing (no cosine is below -1): the adapter is θ_F's, and so are its figures.
        void Adapter(string path, string[] adapted, int seed) => RandomAdapter(w, path, adapted, seed);
        Adapter(w.Dir["adapter"], ["q_proj"], 5);
        string[] loraArgs = ["sweep", "--base", w.Aligned, "--adapter", w.Dir["adapter"], "--safety-vector", w.Vector, "--fisher", w.Fisher, "--calibration", w.Calibration,
            "--modules", "q_proj", "--blocksize", "8", "--nsamples", "4", "--harmful-val", w.Harmful, "--task-val", w.Task, "--task-metric", "exact", "--max-new-tokens", "3",
            "--sparsity", "0", "--safelora-threshold", "-1,0.5", "--resta-gamma", "0.5", "-o", w.Dir["lora"]];
        Ok(CliRunner.Run(loraArgs));
        // RESTA works on the realignment's modules: here, as irr realign --adapter, the adapter's targets.
        var restaReport = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["lora"], "points/resta-g0.5/baseline-report.json")))!;
        Assert.Equal("""["q_proj"]""", restaReport["options"]!["modules"]!.ToJsonString());
        json = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["lora"], SweepJob.FileName)))!;
        var t = json["points"]!.AsArray().Single(p => (string)p!["label"]! == "safelora-t-1")!;
        Assert.Equal((double)json["references"]!["finetuned"]!["harmful_rate"]!, (double)t["harmful_rate"]!);
        Assert.Equal((double)json["references"]!["finetuned"]!["task_score"]!, (double)t["task_score"]!);
        Assert.NotNull(json["baselines"]!["safelora"]);

        // Another IRR-only option (nsamples) redoes the IRR point, not the baselines, which do not read it.
        string record = Path.Combine(w.Dir["lora"], "points/safelora-t-1", SweepJob.PointFileName);
        var before = File.GetLastWriteTimeUtc(record);
        var rerun = CliRunner.Run([.. loraArgs.Select((x, i) => i > 0 && loraArgs[i - 1] == "--nsamples" ? "3" : x)]);
        Ok(rerun);
        Assert.Equal(before, File.GetLastWriteTimeUtc(record));
        Assert.Contains("1 realignment(s) run, 5 point(s) or reference(s) done earlier and skipped", rerun.Err);

        // A safety vector that lacks an adapted matrix is refused before any point is realigned.
        Adapter(w.Dir["adapter2"], ["q_proj", "v_proj"], 6);
        string[] missing = [.. loraArgs.Select(x => x == w.Dir["adapter"] ? w.Dir["adapter2"] : x == w.Dir["lora"] ? w.Dir["lora2"] : x)];
        var m = CliRunner.Run(missing);
        Assert.Equal(2, m.Code);
        Assert.StartsWith($"error: {w.Vector}: the safety vector has no tensor 'model.layers.0.self_attn.v_proj.weight'", m.Err);
        Assert.False(Directory.Exists(w.Dir["lora2"]));

        // Safe LoRA needs a LoRA fine-tune.
        var r = CliRunner.Run(w.Sweep(w.Dir["bad"], "--sparsity", "0", "--safelora-threshold", "0.5"));
        Assert.Equal(2, r.Code);
        Assert.Equal("error: sweep: safelora-threshold needs a LoRA fine-tune (adapter): Safe LoRA is defined for LoRA", r.Err.TrimEnd('\n'));
    }

    // A seeded random rank-2 adapter on θ_A (α = 4) for the adapted modules.
    private static void RandomAdapter(SweepWorld w, string path, string[] adapted, int seed)
    {
        var rng = new Random(seed);
        using var a = Irr.IO.ModelDirectory.Open(w.Aligned);
        var layers = Irr.Realign.TargetModules.WeightNames(a.Config, adapted).Select(n =>
        {
            var shape = a.Info(n).Shape;
            int outDim = (int)shape[0], inDim = (int)shape[1];
            return (n, Tensors.Reference.Uniform(rng, 2 * inDim), Tensors.Reference.Uniform(rng, outDim * 2), outDim, inDim);
        }).ToList();
        Irr.IO.LoraAdapter.Write(path, Irr.IO.LoraConfig.Create(2, 4, adapted, w.Aligned), layers, Irr.IO.TensorDType.F32, [w.Aligned]);
    }

    [Fact]
    public void SafeLoraProjectsWithItsOwnVectorAndAnotherVectorRedoesOnlyItsPoint()
    {
        using var w = new SweepWorld();
        RandomAdapter(w, w.Dir["adapter"], ["q_proj"], 5);
        // Another V of the same matrices: θ_A − θ_F instead of the realignment's θ_A − θ_U.
        string other = w.Dir["v-other.safetensors"];
        Ok(CliRunner.Run("safety-vector", "--aligned", w.Aligned, "--unaligned", w.Finetuned, "--modules", "q_proj,down_proj", "-o", other));
        string sweep = w.Dir["sweep"];
        // τ = 1 projects every matrix whose cosine is below 1 (here both q_proj matrices).
        string[] args = ["sweep", "--base", w.Aligned, "--adapter", w.Dir["adapter"], "--safety-vector", w.Vector, "--fisher", w.Fisher, "--calibration", w.Calibration,
            "--modules", "q_proj", "--blocksize", "8", "--nsamples", "4", "--harmful-val", w.Harmful, "--task-val", w.Task, "--task-metric", "exact", "--max-new-tokens", "3",
            "--sparsity", "0", "--safelora-threshold", "1", "--keep-models", "-o", sweep];
        string point = Path.Combine(sweep, "points/safelora-t1");
        string irrRecord = Path.Combine(sweep, "points/irr-s0", SweepJob.PointFileName);

        // Without --safelora-vector, Safe LoRA projects with --safety-vector.
        Ok(CliRunner.Run(args));
        Assert.Equal(Path.GetFullPath(w.Vector), (string)Json(Path.Combine(point, "baseline-report.json"))["inputs"]!["safety_vector"]!);
        Assert.Equal(Path.GetFullPath(w.Vector), (string)Json(Path.Combine(point, SweepJob.PointFileName))["options"]!["inputs"]!["safety_vector"]!);
        Assert.Null(Json(Path.Combine(sweep, SweepJob.FileName))["safelora_vector"]);
        byte[] withDefault = File.ReadAllBytes(Path.Combine(point, "model/adapter_model.safetensors"));
        var irrWritten = File.GetLastWriteTimeUtc(irrRecord);

        // With it, into the same directory: only the Safe LoRA point is redone (its inputs changed), with the other V.
        var rerun = CliRunner.Run([.. args, "--safelora-vector", other]);
        Ok(rerun);
        Assert.Contains("0 realignment(s) run, 1 baseline point(s) made, 3 point(s) or reference(s) done earlier and skipped", rerun.Err);
        Assert.Equal(irrWritten, File.GetLastWriteTimeUtc(irrRecord));
        var report = Json(Path.Combine(point, "baseline-report.json"));
        Assert.Equal(Path.GetFullPath(other), (string)report["inputs"]!["safety_vector"]!);
        Assert.Equal(2, (int)report["matrices_projected"]!);
        Assert.Equal(Path.GetFullPath(other), (string)Json(Path.Combine(point, SweepJob.PointFileName))["options"]!["inputs"]!["safety_vector"]!);
        Assert.Equal(Path.GetFullPath(other), (string)Json(Path.Combine(sweep, SweepJob.FileName))["safelora_vector"]!);
        // The IRR point still realigns with --safety-vector.
        Assert.Equal(Path.GetFullPath(w.Vector), (string)Json(irrRecord)["options"]!["inputs"]!["safety_vector"]!);
        Assert.NotEqual(withDefault, File.ReadAllBytes(Path.Combine(point, "model/adapter_model.safetensors")));

        // The projected lora_B is C·B with C = V·Vᵀ / ‖V‖_F of the other V, computed naively in float64.
        using (var vFile = Irr.IO.SafetensorsFile.Open(other))
        using (var input = Irr.IO.LoraAdapter.Open(w.Dir["adapter"]))
        using (var projected = Irr.IO.LoraAdapter.Open(Path.Combine(point, "model")))
        {
            Assert.Equal(2, projected.Pairs.Count);
            foreach (var (name, pair) in projected.Pairs)
            {
                var b = input.File.ReadSingle(input.Pairs[name].B.Name);
                int rows = (int)pair.B.Shape[0], cols = (int)pair.A.Shape[1];
                var cb = Irr.Tests.Realign.SafeLoraTests.NaiveCB(Irr.Tests.Realign.SafeLoraTests.NaiveC(vFile.ReadSingle(name), rows, cols), b, rows, 2);
                var written = projected.File.ReadSingle(pair.B.Name);
                for (int i = 0; i < rows; i++)
                    for (int k = 0; k < 2; k++)
                        Assert.True(Math.Abs(cb[i, k] - written[i * 2 + k]) <= 1e-6 * (1 + Math.Abs(cb[i, k])), $"{name} B'[{i},{k}]: {written[i * 2 + k]}, expected {cb[i, k]}");
            }
        }

        // The same vector again: nothing is redone.
        var again = CliRunner.Run([.. args, "--safelora-vector", other]);
        Ok(again);
        Assert.Contains("0 realignment(s) run, 4 point(s) or reference(s) done earlier and skipped", again.Err);
    }

    [Fact]
    public void ASafeLoraVectorWithoutSafeLoraPointsIsRefused()
    {
        using var dir = new TempDir();
        Refused(dir, "error: sweep: safelora-vector applies to the Safe LoRA points only (safelora-threshold)", [.. Unread(dir, "0"), "--safelora-vector", dir["v2"]]);
    }

    [Fact]
    public void AnUnknownJudgeIsRefusedBeforeAnyWork()
    {
        // Moved from SweepTests.TheSweepChecksItsOptionsInItsOwnName: the judge is a JudgeOptions variant, so an unknown kind is refused as the options are read.
        using var w = new SweepWorld();
        var r = CliRunner.Run(w.Sweep(w.Dir["sweep"], "--sparsity", "0", "--judge", "llm"));
        Assert.Equal(2, r.Code);
        Assert.Equal("error: sweep: judge must be keyword or http, not \"llm\"", r.Err.TrimEnd('\n'));
        Assert.False(Directory.Exists(w.Dir["sweep"]));
    }
}

/// <summary>Tiny chat models θ_A, θ_U, θ_F, their safety vector and Fisher (q_proj, down_proj), calibration data and a validation split, for sweeps.</summary>
internal sealed class SweepWorld : IDisposable
{
    public TempDir Dir { get; } = new();
    public string Aligned, Finetuned, Vector, Fisher, Calibration, Harmful, Task;

    public SweepWorld()
    {
        Aligned = ModelCommandTests.ChatModel(Dir, "aligned", seed: 1);
        string unaligned = ModelCommandTests.ChatModel(Dir, "unaligned", seed: 2);
        Finetuned = ModelCommandTests.ChatModel(Dir, "finetuned", seed: 3);
        Calibration = Records("task.jsonl", 4, "compute");
        Harmful = Records("harmful_val.jsonl", 3, "how do I");
        Task = Records("task_val.jsonl", 3, "compute");
        (Vector, Fisher) = (Dir["v.safetensors"], Dir["f.safetensors"]);
        SweepCommandTests.Ok(CliRunner.Run("safety-vector", "--aligned", Aligned, "--unaligned", unaligned, "--modules", "q_proj,down_proj", "-o", Vector));
        SweepCommandTests.Ok(CliRunner.Run("fisher", "--model", Aligned, "--data", Harmful, "--modules", "q_proj,down_proj", "-o", Fisher));
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
