using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Irr.Eval;
using Irr.Eval.Report;
using Irr.Tests.IO;

namespace Irr.Tests.Eval.Report;

/// <summary>
/// The report's intervals, paired differences, over-refusal, incoherence and judge agreement, from hand-written run
/// directories with known counts. Wilson bounds are statsmodels 0.13.5's <c>proportion_confint(k, n, method="wilson")</c>,
/// κ and confusion tables scikit-learn 1.2.1's <c>cohen_kappa_score</c> and <c>confusion_matrix</c>, computed once:
/// <code>
/// proportion_confint(9, 10) = (0.59585, 0.98212)   proportion_confint(3, 10) = (0.10779, 0.60322)
/// proportion_confint(4, 20) = (0.08066, 0.41602)   proportion_confint(1, 10) = (0.01788, 0.40415)
/// proportion_confint(5, 8)  = (0.30574, 0.86316)
/// A = [h, h, s, s, s, u, h, s], B = [h, s, s, s, h, s, h, s]: κ = 0.3142857, [[2 1 0] [1 3 0] [0 1 0]];
/// first four 0.5, last four 0.2.
/// </code>
/// </summary>
public class ReportEvidenceTests
{
    private static JudgedResponse R(string set, string prompt, string response, Verdict verdict) => new(set, prompt, null, response, verdict, null, null);

    // A run directory as irr eval safety writes it: responses.jsonl, safety.json (counts summarized from the verdicts).
    private static void WriteRun(string directory, string judge, IReadOnlyList<JudgedResponse> judged, Func<SafetyRun, SafetyRun>? edit = null, TaskRun? task = null)
    {
        Directory.CreateDirectory(directory);
        var sets = judged.Select(j => j.Set).Distinct().Select(s => (s, $"data/{s}.jsonl")).ToList();
        var run = SafetyEvaluation.Summarize("models/m", null, judge, sets, judged);
        SafetyEvaluation.Save(directory, edit?.Invoke(run) ?? run, judged);
        task?.Save(directory);
    }

    // θ_F: p0…p8 harmful, p9 safe (9/10); IRR: p0…p2 harmful, the rest safe (3/10), written in another order.
    private static (string Ft, string Irr) TwoModels(TempDir dir)
    {
        var ft = Enumerable.Range(0, 10).Select(i => R("harm", $"p{i}", $"ft {i}", i < 9 ? Verdict.Harmful : Verdict.Safe)).ToList();
        var irr = Enumerable.Range(0, 10).Reverse().Select(i => R("harm", $"p{i}", $"irr {i}", i < 3 ? Verdict.Harmful : Verdict.Safe)).ToList();
        WriteRun(dir["ft"], "keyword", ft, task: new TaskRun("models/ft", null, "data/t.jsonl", "exact", 10, 9));
        WriteRun(dir["irr"], "keyword", irr, task: new TaskRun("models/irr", null, "data/t.jsonl", "exact", 10, 8));
        // Task examples: θ_F misses 9, IRR misses 0 and 1 (listed backwards): pairs (0,1), (0,1), (1,0), seven (1,1): mean −1/10.
        string Prediction(int i, bool correct) => $"{{\"index\":{i},\"prompt\":\"q{i}\",\"gold\":\"a\",\"response\":\"a\",\"extracted\":\"a\",\"correct\":{(correct ? "true" : "false")}}}";
        File.WriteAllLines(Path.Combine(dir["ft"], "predictions.jsonl"), Enumerable.Range(0, 10).Select(i => Prediction(i, i != 9)));
        File.WriteAllLines(Path.Combine(dir["irr"], "predictions.jsonl"), Enumerable.Range(0, 10).Reverse().Select(i => Prediction(i, i > 1)));
        return (dir["ft"], dir["irr"]);
    }

    [Fact]
    public void RatesCarryTheirWilsonIntervalsAndDifferencesArePairedByPrompt()
    {
        using var dir = new TempDir();
        var (ft, irr) = TwoModels(dir);
        var report = ComparisonReport.Build([ComparisonReport.LoadReportRun(ft), ComparisonReport.LoadReportRun(irr)], null, new ReportOptions());
        string md = report.Markdown;
        Assert.Contains("| ft | 90.0% \\[59.6–98.2%\\] | — | 90.0% \\[59.6–98.2%\\] | — | exact |", md);
        var t = report.TaskDifferences["irr"];
        Assert.Equal(("ft", 10, -0.1), (t.Reference, t.Pairs, Math.Round(t.Difference, 12)));
        Assert.Equal(Intervals.PairedBootstrap([(0, 1), (0, 1), (1, 0), .. Enumerable.Repeat((1.0, 1.0), 7)], 2000, 0), t.Ci);
        // Pairs by prompt: p3…p8 are 1 − 0 for θ_F and 0 for IRR, the others equal: mean −6/10.
        var d = report.HarmfulDifferences["irr"];
        Assert.Equal(("ft", 10, -0.6), (d.Reference, d.Pairs, Math.Round(d.Difference, 12)));
        var pairs = Enumerable.Range(0, 10).Select(i => (A: i < 3 ? 1.0 : 0.0, B: i < 9 ? 1.0 : 0.0)).ToList();
        Assert.Equal(Intervals.PairedBootstrap(pairs, 2000, 0), d.Ci);
        Assert.Contains($"| irr | 30.0% \\[10.8–60.3%\\] | −60.0 pts \\[{ComparisonReport.Points(d.Ci!.Value.Low).Replace(" pts", "")}, ", md);
        Assert.Contains("**ft 90.0% → irr 30.0% harmful (difference −60.0 pts", md);
        Assert.Contains("task accuracy 80.0% against 90.0%.**", md);

        using var json = JsonDocument.Parse(report.Json);
        var model = json.RootElement.GetProperty("models")[1];
        Assert.Equal(0.10779126740630104, model.GetProperty("safety").GetProperty("overall").GetProperty("harmful_rate_ci").GetProperty("low").GetDouble(), 12);
        Assert.Equal(0.5958499732047614, json.RootElement.GetProperty("models")[0].GetProperty("task").GetProperty("accuracy_ci").GetProperty("low").GetDouble(), 12);
        Assert.Equal(-0.6, model.GetProperty("harmful_rate_difference").GetProperty("difference").GetDouble(), 12);
        Assert.StartsWith("ft 90.0% → irr", json.RootElement.GetProperty("headline").GetString());
    }

    [Fact]
    public void AHarmfulRateWithNothingJudgedIsADash()
    {
        using var dir = new TempDir();
        WriteRun(dir["u"], "keyword", [R("harm", "p", "?", Verdict.Unknown)]);
        var report = ComparisonReport.Build([ComparisonReport.LoadReportRun(dir["u"])], null, new ReportOptions());
        Assert.Contains("| u | — | 1 |", report.Markdown);
        Assert.Contains("\"harmful_rate\": null", report.Json);
    }

    [Fact]
    public void OverRefusalStandsBesideTheHarmfulRateInTableAndChart()
    {
        using var dir = new TempDir();
        // A hand-made safety.json: 3 of 10 harmful; a benign set of 20 with 4 refusals.
        File.WriteAllText(Path.Combine(Directory.CreateDirectory(dir["r"]).FullName, "safety.json"), """
            { "model": "m", "adapter": null, "judge": "keyword",
              "sets": [ { "name": "harm", "file": "harm.jsonl", "counts": { "total": 10, "harmful": 3, "safe": 7, "unknown": 0 }, "categories": [] },
                        { "name": "xstest", "file": "x.jsonl", "counts": { "total": 0, "harmful": 0, "safe": 0, "unknown": 0 }, "categories": [],
                          "benign": true, "refusal": { "responses": 20, "refused": 4, "unknown": 0 } } ],
              "overall": { "total": 10, "harmful": 3, "safe": 7, "unknown": 0 },
              "over_refusal": { "responses": 20, "refused": 4, "unknown": 0 },
              "incoherence": { "responses": 10, "empty": 1, "repetitive": 0, "other_script": 0 } }
            """);
        var report = ComparisonReport.Build([ComparisonReport.LoadReportRun(dir["r"])], null, new ReportOptions());
        Assert.Contains("| r | 30.0% \\[10.8–60.3%\\] | 20.0% \\[8.1–41.6%\\] | 20 |", report.Markdown);
        Assert.Equal(["harm"], report.ShownSetNames); // the benign set has no harmful rate to show per set
        Assert.Contains("| r | 10 | 1 | 0 | 0 | 10.0% \\[1.8–40.4%\\] |", report.Markdown);
        var svg = XDocument.Parse(report.OverRefusalSvg!);
        var bars = svg.Descendants().Where(e => (string?)e.Attribute("class") == "bar").ToList();
        Assert.Equal(["harmful rate (harmful prompts)", "over-refusal rate (benign prompts)"], bars.Select(b => (string)b.Attribute("data-group")!));
        Assert.Equal(2, svg.Descendants().Count(e => (string?)e.Attribute("class") == "error-bar"));
        report.WriteTo(dir["out"]);
        Assert.True(File.Exists(dir["out/" + ComparisonReport.OverRefusalChartFile]));
    }

    [Fact]
    public void RunsOfTheSameResponsesByTwoJudgesShowTheirAgreement()
    {
        using var dir = new TempDir();
        Verdict H = Verdict.Harmful, S = Verdict.Safe, U = Verdict.Unknown;
        Verdict[] a = [H, H, S, S, S, U, H, S], b = [H, S, S, S, H, S, H, S];
        JudgedResponse Line(int i, Verdict v) => R(i < 4 ? "one" : "two", $"p{i}", $"answer {i}", v);
        // A benign set's lines (judged apart: their figure is the refusal rate) are left out of the agreement.
        JudgedResponse Benign(Verdict v) => R("xstest", "p-benign", "answer benign", v) with { Benign = true };
        WriteRun(dir["kw"], "keyword", [.. a.Select((v, i) => Line(i, v)), Benign(S)]);
        WriteRun(dir["llm"], "llamaguard", [.. b.Select((v, i) => Line(i, v)), Benign(H)]);
        var report = ComparisonReport.Build([ComparisonReport.LoadReportRun(dir["kw"]), ComparisonReport.LoadReportRun(dir["llm"])], null, new ReportOptions());
        var agreement = Assert.Single(report.Agreements);
        Assert.Equal(["one", "two", "all"], agreement.Sets.Select(s => s.Set));
        Assert.Equal(0.5, agreement.Sets[0].Agreement.Kappa!.Value, 12);
        Assert.Equal(0.2, agreement.Sets[1].Agreement.Kappa!.Value, 12);
        Assert.Equal(0.3142857142857143, agreement.Sets[2].Agreement.Kappa!.Value, 12);
        string md = report.Markdown;
        Assert.Contains("### kw (keyword) vs llm (llamaguard)", md);
        Assert.Contains("| all | 8 | 62.5% | 0.314 |", md);
        Assert.Contains("| harmful | 2 | 1 | 0 |", md);
        Assert.Contains("| safe | 1 | 3 | 0 |", md);
        Assert.Contains("| unknown | 0 | 1 | 0 |", md);
        using var json = JsonDocument.Parse(report.Json);
        var all = json.RootElement.GetProperty("judge_agreement")[0].GetProperty("sets")[2];
        Assert.Equal("[[2,1,0],[1,3,0],[0,1,0]]", all.GetProperty("confusion").GetRawText().Replace(" ", "").Replace("\n", "").Replace("\r", ""));

        // Different responses (another model) are not compared.
        WriteRun(dir["other"], "llamaguard", b.Select((v, i) => R(i < 4 ? "one" : "two", $"p{i}", $"other {i}", v)).ToList());
        Assert.Empty(ComparisonReport.Build([ComparisonReport.LoadReportRun(dir["kw"]), ComparisonReport.LoadReportRun(dir["other"])], null, new ReportOptions()).Agreements);
    }

    [Fact]
    public void HtmlChartsAreDrawnAtTheirDisplaySizeWithLegibleText()
    {
        using var dir = new TempDir();
        var (ft, irr) = TwoModels(dir);
        var report = ComparisonReport.Build([ComparisonReport.LoadReportRun(ft, "θ_F"), ComparisonReport.LoadReportRun(irr, "IRR")], null, new ReportOptions
        {
            Sections = [new ReportSection("Choosing s", [new ReportPart { SubHeading = "full", Text = "why", ChartFile = "f.svg", ChartAlt = "f", ChartSvg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\" viewBox=\"0 0 10 10\"/>" }])],
        });
        var svgs = Regex.Matches(report.Html, "<svg.*?</svg>|<svg[^>]*/>", RegexOptions.Singleline).Select(m => XElement.Parse(m.Value)).ToList();
        Assert.Equal(3, svgs.Count); // by prompt set, safety vs utility, the section's chart
        foreach (var svg in svgs)
        {
            string[] box = ((string)svg.Attribute("viewBox")!).Split(' ');
            Assert.Equal((string)svg.Attribute("width")!, box[2]);
            Assert.Equal((string)svg.Attribute("height")!, box[3]);
            foreach (var size in svg.DescendantsAndSelf().Select(e => e.Attribute("font-size")).OfType<XAttribute>())
                Assert.True(double.Parse(size.Value, CultureInfo.InvariantCulture) >= 11, $"font-size {size.Value}");
        }
        Assert.Equal("880", (string)svgs[0].Attribute("width")!);
        // θ_F has the same colour in every chart.
        Assert.All(svgs.Take(2), svg => Assert.Contains(svg.Descendants(), e => (string?)e.Attribute("data-label") == "θ_F" || (string?)e.Attribute("data-series") == "θ_F"
            ? (string?)e.Attribute("fill") == Charts.FinetunedColour || (string?)e.Attribute("stroke") == Charts.FinetunedColour : false));
        Assert.Contains("<p class=\"headline\">θ_F 90.0% → IRR 30.0% harmful", report.Html);
        Assert.Contains("<h2>Choosing s</h2>\n<h3>full</h3>\n<p>why</p>\n<figure>", report.Html);
        Assert.Contains("## Choosing s\n\n### full\n\nwhy\n\n![f](f.svg)", report.Markdown);
        Assert.Equal(Regex.Matches(report.Html, "<table>").Count, Regex.Matches(report.Html, "<div class=\"table-scroll\">\n<table>").Count);
        Assert.Equal(2, XElement.Parse(report.SafetyVsUtilitySvg!).Descendants().Count(e => (string?)e.Attribute("class") == "error-bar") / 2);
    }

    [Fact]
    public void ModelColoursKeepThetaAAndThetaF()
    {
        var colours = Charts.ModelColours(["aligned", "full-finetuned", "full-irr", "lora-finetuned", "θ_A (aligned)"]);
        Assert.Equal(Charts.AlignedColour, colours["aligned"]);
        Assert.Equal(Charts.FinetunedColour, colours["full-finetuned"]);
        Assert.NotEqual(Charts.FinetunedColour, colours["lora-finetuned"]);
        Assert.NotEqual(Charts.AlignedColour, colours["θ_A (aligned)"]); // a second θ_A: a darker shade
        Assert.Equal(5, colours.Values.Distinct().Count());
    }

    [Fact]
    public void TheDemosTwentyOneModelsHaveTwentyOneColours()
    {
        string[] labels = ["aligned", "unaligned", "full-finetuned", "full-irr", "full-irr-s0", "full-random", "full-irr-norecal", "full-irr-more",
            "full-resta", "full-safedelta", "full-antidote", "full-interpolate", "lora-finetuned", "lora-irr", "lora-irr-s0", "lora-random",
            "lora-resta", "lora-safelora", "lora-safedelta", "lora-antidote", "lora-interpolate"];
        var colours = Charts.ModelColours(labels);
        Assert.Equal(21, colours.Values.Distinct().Count());
        Assert.Equal("#0072B2", colours["unaligned"]);     // the first other model
        // The 13th other model (lora-random) starts the second round: #0072B2 at 70% per channel, 0x72·0.7 = 79.8 → 0x4F, 0xB2·0.7 = 124.6 → 0x7C.
        Assert.Equal("#004F7C", colours["lora-random"]);
    }

    [Fact]
    public void ABarAtOneHundredPercentKeepsItsValueLabel()
    {
        var svg = XElement.Parse(Charts.GroupedBarChart("t", ["set"], Enumerable.Range(0, 12).Select(i => $"model {i}").ToList(),
            [Enumerable.Range(0, 12).Select(_ => (double?)1.0).ToList()], "y", "x"));
        Assert.Equal(12, svg.Descendants().Count(e => (string?)e.Attribute("class") == "value" && e.Value == "100.0%"));
    }

    [Fact]
    public void AMalformedPredictionsLineIsAOneLineErrorNamingTheFileAndLine()
    {
        using var dir = new TempDir();
        var (ft, _) = TwoModels(dir);
        string path = Path.Combine(ft, "predictions.jsonl");
        File.AppendAllLines(path, ["{\"index\":10,\"prompt\":\"q\"}"]);   // line 11: no "correct"
        var e = Assert.Throws<IrrException>(() => ComparisonReport.LoadReportRun(ft));
        Assert.StartsWith($"{path}: line 11", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
