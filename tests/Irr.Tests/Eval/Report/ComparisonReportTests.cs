using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Irr.Eval;
using Irr.Eval.Report;
using Irr.Tests.IO;

namespace Irr.Tests.Eval.Report;

/// <summary>The report of hand-made runs whose rates are worked out by hand in the comments.</summary>
public class ComparisonReportTests
{
    private static SafetyCounts C(int total, int harmful, int safe, int unknown) => new(total, harmful, safe, unknown);

    /// <summary>aligned: 5 harmful of 59 judged (8.5%), 1 unknown, 150/200 correct (75.0%).</summary>
    internal static SafetyRun AlignedSafety() => new("models/aligned", null, "keyword",
        [
            new SetSafety("catqa", "data/catqa.jsonl", C(40, 2, 38, 0),
                [new CategorySafety("Illegal Activity/Drug", C(20, 1, 19, 0)), new CategorySafety("Hate", C(20, 1, 19, 0))]),
            new SetSafety("harmbench", "data/harmbench.jsonl", C(20, 3, 16, 1), []),  // 3/19 = 15.79%
        ],
        C(60, 5, 54, 1));

    internal static TaskRun AlignedTask() => new("models/aligned", null, "data/gsm8k.jsonl", "gsm8k", 200, 150);

    /// <summary>fine-tuned: 29 harmful of 60 (48.3%), 160/200 correct (80.0%).</summary>
    internal static SafetyRun FineTunedSafety() => new("models/fine-tuned", null, "keyword",
        [
            new SetSafety("catqa", "data/catqa.jsonl", C(40, 20, 20, 0),
                [new CategorySafety("Illegal Activity/Drug", C(20, 12, 8, 0)), new CategorySafety("Hate", C(20, 8, 12, 0))]),
            new SetSafety("harmbench", "data/harmbench.jsonl", C(20, 9, 11, 0), []),
        ],
        C(60, 29, 31, 0));

    internal static TaskRun FineTunedTask() => new("models/fine-tuned", null, "data/gsm8k.jsonl", "gsm8k", 200, 160);

    private static ComparisonReport Example() => ComparisonReport.Build(
    [
        ("aligned", AlignedSafety(), AlignedTask()),
        ("fine-tuned", FineTunedSafety(), FineTunedTask()),
        ("task-only", null, new TaskRun("models/x", "adapters/x", "data/gsm8k.jsonl", "gsm8k", 200, 125)),
    ]);

    [Fact]
    public void MarkdownSummaryTableHasTheHandComputedRows()
    {
        string[] lines = Example().Markdown.Split('\n');
        string[] expected =
        [
            "| model | harmful rate | harmful: catqa | harmful: harmbench | unknown | task accuracy | metric |",
            "|---|---:|---:|---:|---:|---:|---|",
            "| aligned | 8.5% \\[3.7–18.4%\\] | 5.0% \\[1.4–16.5%\\] | 15.8% \\[5.5–37.6%\\] | 1 | 75.0% \\[68.6–80.5%\\] | gsm8k |",
            "| fine-tuned | 48.3% \\[36.2–60.7%\\] | 50.0% \\[35.2–64.8%\\] | 45.0% \\[25.8–65.8%\\] | 0 | 80.0% \\[73.9–85.0%\\] | gsm8k |",
            "| task-only | — | — | — | — | 62.5% \\[55.6–68.9%\\] | gsm8k |",
        ];
        int start = Array.IndexOf(lines, expected[0]);
        Assert.True(start >= 0, "summary header not found");
        Assert.Equal(expected, lines[start..(start + expected.Length)]);
        Assert.Equal(string.Join("\n", expected) + "\n", Example().SummaryMarkdown);
    }

    [Fact]
    public void MarkdownHasTheCategoryTableChartsFrontAndNotes()
    {
        string md = Example().Markdown;
        Assert.StartsWith("# Safety and utility comparison\n", md);
        Assert.Contains("### catqa\n\n| category | aligned | fine-tuned |\n|---|---:|---:|\n" +
                        "| Illegal Activity/Drug | 5.0% \\[0.9–23.6%\\] | 60.0% \\[38.7–78.1%\\] |\n| Hate | 5.0% \\[0.9–23.6%\\] | 40.0% \\[21.9–61.3%\\] |\n", md);
        Assert.DoesNotContain("### harmbench", md); // no categories
        Assert.Contains("![harmful rate by model and prompt set](harmful-rate.svg)", md);
        Assert.Contains("(safety-vs-utility.svg)", md);
        Assert.Contains("On the Pareto front: aligned, fine-tuned.", md);
        Assert.Contains("- No safety.json for: task-only.", md);
    }

    [Fact]
    public void UnknownColumnAndSetColumnsOnlyWhenNeeded()
    {
        var single = new SafetyRun("m", null, "keyword", [new SetSafety("s", "s.jsonl", C(10, 1, 9, 0), [])], C(10, 1, 9, 0));
        string table = ComparisonReport.Build([("m", single, null)]).SummaryMarkdown;
        Assert.Equal("| model | harmful rate |\n|---|---:|\n| m | 10.0% \\[1.8–40.4%\\] |\n", table);
    }

    [Fact]
    public void MarkdownEscapesLabels()
    {
        string table = ComparisonReport.Build([("a|b *c* _d_ e_f", null, AlignedTask())]).SummaryMarkdown;
        Assert.Contains(@"| a\|b \*c\* \_d\_ e_f | 75.0% \[68.6–80.5%\] | gsm8k |", table);
    }

    [Fact]
    public void HtmlIsSelfContainedWithTheChartsInline()
    {
        var report = Example();
        string html = report.Html;
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.DoesNotMatch(new Regex(@"(src|href)\s*=\s*[""']?\s*(https?:)?//", RegexOptions.IgnoreCase), html);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<link", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("@import", html);
        Assert.Contains("<style>", html);
        Assert.Contains(report.HarmfulRateSvg!, html);
        Assert.Contains(report.SafetyVsUtilitySvg!, html);
        var inline = Regex.Matches(html, "<svg .*?</svg>", RegexOptions.Singleline).Select(m => XElement.Parse(m.Value)).ToList();
        Assert.Equal(2, inline.Count);
        Assert.Contains("<td>aligned</td><td class=\"num\">8.5% [3.7–18.4%]</td>", html);
    }

    [Fact]
    public void HtmlEscapesLabelsAndTitle()
    {
        string html = ComparisonReport.Build([("a<b & \"c\"", AlignedSafety(), AlignedTask())], "x <y>").Html;
        Assert.Contains("<title>x &lt;y&gt;</title>", html);
        Assert.Contains("<td>a&lt;b &amp; &quot;c&quot;</td>", html);
        Assert.DoesNotContain("a<b", html);
    }

    [Fact]
    public void JsonHasEveryFigure()
    {
        using var doc = JsonDocument.Parse(Example().Json);
        var root = doc.RootElement;
        Assert.Equal(["catqa", "harmbench"], root.GetProperty("sets").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["aligned", "fine-tuned"], root.GetProperty("pareto_front").EnumerateArray().Select(e => e.GetString()));
        var models = root.GetProperty("models").EnumerateArray().ToList();
        Assert.Equal(["aligned", "fine-tuned", "task-only"], models.Select(m => m.GetProperty("label").GetString()));

        var aligned = models[0];
        Assert.Equal(5.0 / 59, aligned.GetProperty("safety").GetProperty("overall").GetProperty("harmful_rate").GetDouble(), 1e-12);
        Assert.Equal(1, aligned.GetProperty("safety").GetProperty("overall").GetProperty("unknown").GetInt32());
        var harmbench = aligned.GetProperty("safety").GetProperty("sets")[1];
        Assert.Equal(3.0 / 19, harmbench.GetProperty("counts").GetProperty("harmful_rate").GetDouble(), 1e-12);
        var drug = aligned.GetProperty("safety").GetProperty("sets")[0].GetProperty("categories")[0];
        Assert.Equal("Illegal Activity/Drug", drug.GetProperty("category").GetString());
        Assert.Equal(0.05, drug.GetProperty("counts").GetProperty("harmful_rate").GetDouble(), 1e-12);
        Assert.Equal(0.75, aligned.GetProperty("task").GetProperty("accuracy").GetDouble(), 1e-12);
        Assert.Equal("gsm8k", aligned.GetProperty("task").GetProperty("metric").GetString());
        Assert.True(aligned.GetProperty("pareto_front").GetBoolean());

        Assert.Equal(JsonValueKind.Null, models[2].GetProperty("safety").ValueKind);
        Assert.Equal(JsonValueKind.Null, models[2].GetProperty("pareto_front").ValueKind);
        Assert.Equal(0.625, models[2].GetProperty("task").GetProperty("accuracy").GetDouble(), 1e-12);
    }

    [Fact]
    public void ScatterIsSkippedWithoutAModelHavingBothFiles()
    {
        var report = ComparisonReport.Build([("a", AlignedSafety(), null), ("b", null, FineTunedTask())]);
        Assert.Null(report.SafetyVsUtilitySvg);
        Assert.NotNull(report.HarmfulRateSvg);
        Assert.Empty(report.ParetoFront);
        Assert.Contains("Skipped: no model has both a safety.json and a task.json.", report.Markdown);
        using var dir = new TempDir();
        report.WriteTo(dir["report"]);
        Assert.Equal(["harmful-rate.svg", "report.html", "report.json", "report.md"],
            Directory.GetFiles(dir["report"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var taskOnly = ComparisonReport.Build([("b", null, FineTunedTask())]);
        Assert.Null(taskOnly.HarmfulRateSvg);
        Assert.Null(taskOnly.SafetyVsUtilitySvg);
    }

    [Fact]
    public void DifferentJudgesAreNoted()
    {
        var other = AlignedSafety() with { Judge = "http:llama-guard:x" };
        var report = ComparisonReport.Build([("a", AlignedSafety(), null), ("b", other, null)]);
        Assert.Contains(report.Notes, n => n.Contains("different judges") && n.Contains("keyword (a)") && n.Contains("http:llama-guard:x (b)"));
    }

    [Fact]
    public void BadRunsAreRejectedWithTheirLabel()
    {
        Assert.Contains("unique", Assert.Throws<IrrException>(() => ComparisonReport.Build([("a", AlignedSafety(), null), ("a", null, AlignedTask())])).Message);
        Assert.Contains("x: neither", Assert.Throws<IrrException>(() => ComparisonReport.Build([("x", null, null)])).Message);
        Assert.Throws<IrrException>(() => ComparisonReport.Build([]));
        var broken = AlignedSafety() with { Overall = C(60, 5, 54, 0) };
        Assert.Contains("b: safety.json: overall", Assert.Throws<IrrException>(() => ComparisonReport.Build([("b", broken, null)])).Message);
        var twice = AlignedSafety() with { Sets = [.. AlignedSafety().Sets, AlignedSafety().Sets[0]] };
        Assert.Contains("'catqa' appears twice", Assert.Throws<IrrException>(() => ComparisonReport.Build([("c", twice, null)])).Message);
        Assert.Contains("d: task.json", Assert.Throws<IrrException>(() => ComparisonReport.Build([("d", null, AlignedTask() with { Correct = 201 })])).Message);
    }

    [Fact]
    public void WriteToWritesEveryFileAndRefusesAnExistingDirectory()
    {
        using var dir = new TempDir();
        var report = Example();
        report.WriteTo(dir["out"]);
        Assert.Equal(report.Markdown, File.ReadAllText(dir["out/report.md"]));
        Assert.Equal(report.Html, File.ReadAllText(dir["out/report.html"]));
        Assert.Equal(report.Json, File.ReadAllText(dir["out/report.json"]));
        XDocument.Load(dir["out/harmful-rate.svg"]);
        XDocument.Load(dir["out/safety-vs-utility.svg"]);

        Directory.CreateDirectory(dir["empty"]);
        var before = Directory.GetFileSystemEntries(dir.Path).Order().ToList();
        Assert.Throws<IrrException>(() => ComparisonReport.Build([("a", null, AlignedTask())]).WriteTo(dir["out"]));
        Assert.Throws<IrrException>(() => report.WriteTo(dir["empty"]));
        Assert.Equal(before, Directory.GetFileSystemEntries(dir.Path).Order().ToList());
        Assert.Equal(report.Markdown, File.ReadAllText(dir["out/report.md"]));

        var small = ComparisonReport.Build([("a", null, AlignedTask())]);
        small.WriteTo(dir["out"], overwrite: true);
        Assert.Equal(small.Markdown, File.ReadAllText(dir["out/report.md"]));
        Assert.False(File.Exists(dir["out/harmful-rate.svg"])); // replaced as a whole
    }

    [Fact]
    public void LoadRunReadsTheFilesAndNamesTheDirectory()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["runs/IRR"]);
        AlignedSafety().Save(dir["runs/IRR"]);
        var (label, safety, task) = ComparisonReport.LoadRun(dir["runs/IRR"] + "/");
        Assert.Equal("IRR", label);
        Assert.Equal(5, safety!.Overall.Harmful);
        Assert.Null(task);
        Assert.Equal("mine", ComparisonReport.LoadRun(dir["runs/IRR"], "mine").Label);

        Directory.CreateDirectory(dir["runs/empty"]);
        Assert.Contains(dir["runs/empty"], Assert.Throws<IrrException>(() => ComparisonReport.LoadRun(dir["runs/empty"])).Message);
        Assert.Contains("no such run directory", Assert.Throws<IrrException>(() => ComparisonReport.LoadRun(dir["runs/none"])).Message);
    }
}
