using System.Xml.Linq;
using Irr.Tests.Eval.Report;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>irr report on run directories written with the run files' own Save.</summary>
public class ReportCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private static (string Aligned, string FineTuned) TwoRuns(TempDir dir)
    {
        string aligned = dir["runs/aligned"], fineTuned = dir["runs/fine-tuned"];
        Directory.CreateDirectory(aligned);
        Directory.CreateDirectory(fineTuned);
        ComparisonReportTests.AlignedSafety().Save(aligned);
        ComparisonReportTests.AlignedTask().Save(aligned);
        ComparisonReportTests.FineTunedSafety().Save(fineTuned);
        ComparisonReportTests.FineTunedTask().Save(fineTuned);
        return (aligned, fineTuned);
    }

    /// <summary>Every file under <paramref name="root"/> with its content, to show that nothing changed.</summary>
    private static Dictionary<string, string> Snapshot(string root) =>
        Directory.GetFiles(root, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllText);

    [Fact]
    public void WritesTheReportOfTwoRuns()
    {
        using var dir = new TempDir();
        var (aligned, fineTuned) = TwoRuns(dir);
        var runsBefore = Snapshot(dir["runs"]);

        var (code, output, error) = Run("report", aligned, fineTuned, "-o", dir["report"], "--title", "Two models");
        Assert.True(code == 0, error);
        Assert.Equal(["harmful-rate.svg", "report.html", "report.json", "report.md", "safety-vs-utility.svg"],
            Directory.GetFiles(dir["report"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        string md = File.ReadAllText(dir["report/report.md"]);
        Assert.StartsWith("# Two models\n", md);
        Assert.Contains("| aligned | 8.5% \\[3.7–18.4%\\] | 5.0% \\[1.4–16.5%\\] | 15.8% \\[5.5–37.6%\\] | 1 | 75.0% \\[68.6–80.5%\\] | gsm8k |", md);
        Assert.Contains("| fine-tuned | 48.3% \\[36.2–60.7%\\] | 50.0% \\[35.2–64.8%\\] | 45.0% \\[25.8–65.8%\\] | 0 | 80.0% \\[73.9–85.0%\\] | gsm8k |", md);
        Assert.Contains("| aligned | 8.5% \\[3.7–18.4%\\] |", output);
        Assert.Contains("Pareto front: aligned, fine-tuned", output);
        Assert.Contains("wrote", error);
        foreach (string svg in new[] { "harmful-rate.svg", "safety-vs-utility.svg" })
            Assert.Equal("svg", XDocument.Load(Path.Combine(dir["report"], svg)).Root!.Name.LocalName);
        Assert.Equal(runsBefore, Snapshot(dir["runs"]));
        Assert.Equal(["report", "runs"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal)); // no temporary left
    }

    [Fact]
    public void LabelsOverrideTheDirectoryNames()
    {
        using var dir = new TempDir();
        var (aligned, fineTuned) = TwoRuns(dir);
        var (code, _, error) = Run("report", aligned, fineTuned, "-o", dir["report"], "--labels", "base, IRR w/o recalibration");
        Assert.True(code == 0, error);
        string md = File.ReadAllText(dir["report/report.md"]);
        Assert.Contains("| base | 8.5% \\[3.7–18.4%\\] |", md);
        Assert.Contains("| IRR w/o recalibration | 48.3% \\[36.2–60.7%\\] |", md);

        var (wrongCount, _, countError) = Run("report", aligned, fineTuned, "-o", dir["other"], "--labels", "only-one");
        Assert.Equal(2, wrongCount);
        Assert.Contains("1 label(s) for 2 run directories", countError);
        Assert.False(Directory.Exists(dir["other"]));
    }

    [Fact]
    public void RunsWithAttacksGetTheChartByAttack()
    {
        using var dir = new TempDir();
        string aligned = dir["runs/aligned"], fineTuned = dir["runs/fine-tuned"];
        Directory.CreateDirectory(aligned);
        Directory.CreateDirectory(fineTuned);
        AttackReportTests.AlignedAttacked().Save(aligned);
        AttackReportTests.FineTunedAttacked().Save(fineTuned);

        var (code, _, error) = Run("report", aligned, fineTuned, "-o", dir["report"]);
        Assert.True(code == 0, error);
        Assert.Contains("wrote " + dir["report"] + ": report.md, report.html, report.json, harmful-rate.svg, harmful-rate-by-attack.svg", error);
        Assert.Contains("note: The runs were evaluated under different attacks", error);
        Assert.Contains("| fine-tuned | 50.0% \\[23.7–76.3%\\] | 80.0% \\[49.0–94.3%\\] | — | 33.3% \\[12.1–64.6%\\] |", File.ReadAllText(dir["report/report.md"]));
        Assert.Equal("svg", XDocument.Load(dir["report/harmful-rate-by-attack.svg"]).Root!.Name.LocalName);

        // A hand-edited attacks block that does not add up: exit code 2, one line, nothing written.
        File.WriteAllText(Path.Combine(fineTuned, "safety.json"), File.ReadAllText(Path.Combine(fineTuned, "safety.json")).Replace("\"attack_success_rate\": 0.3", "\"attack_success_rate\": 3"));
        var (code2, _, error2) = Run("report", aligned, fineTuned, "-o", dir["other"]);
        Assert.Equal(2, code2);
        Assert.Equal("error: fine-tuned: safety.json: attack 'base64': attack_success_rate (3) must lie in [0, 1]", error2.Trim());
        Assert.False(Directory.Exists(dir["other"]));
    }

    [Fact]
    public void ADirectoryWithNeitherFileIsAnError()
    {
        using var dir = new TempDir();
        var (aligned, _) = TwoRuns(dir);
        Directory.CreateDirectory(dir["runs/nothing-here"]);
        var (code, _, error) = Run("report", aligned, dir["runs/nothing-here"], "-o", dir["report"]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(dir["runs/nothing-here"], error);
        Assert.Contains("neither safety.json nor task.json", error);
        Assert.DoesNotContain("   at ", error);
        Assert.False(Directory.Exists(dir["report"]));
    }

    [Fact]
    public void DuplicateLabelsAreAnError()
    {
        using var dir = new TempDir();
        var (aligned, fineTuned) = TwoRuns(dir);
        Directory.CreateDirectory(dir["other/aligned"]);
        ComparisonReportTests.FineTunedTask().Save(dir["other/aligned"]);

        var (code, _, error) = Run("report", aligned, dir["other/aligned"], "-o", dir["report"]);
        Assert.Equal(2, code);
        Assert.Contains("'aligned'", error);
        Assert.Contains("unique", error);
        Assert.False(Directory.Exists(dir["report"]));

        var (code2, _, error2) = Run("report", aligned, fineTuned, "-o", dir["report"], "--labels", "x,x");
        Assert.Equal(2, code2);
        Assert.Contains("'x'", error2);
        Assert.False(Directory.Exists(dir["report"]));
    }

    [Fact]
    public void AnExistingOutputNeedsOverwrite()
    {
        using var dir = new TempDir();
        var (aligned, fineTuned) = TwoRuns(dir);
        Directory.CreateDirectory(dir["report"]);
        File.WriteAllText(dir["report/keep.txt"], "mine");

        var (code, _, error) = Run("report", aligned, fineTuned, "-o", dir["report"]);
        Assert.Equal(2, code);
        Assert.Contains("exists", error);
        Assert.Contains("give --overwrite", error); // the one output policy names the flag (issue 25)
        Assert.Equal(new Dictionary<string, string> { ["keep.txt"] = "mine" }, Snapshot(dir["report"]));

        var (code2, _, error2) = Run("report", aligned, fineTuned, "-o", dir["report"], "--overwrite");
        Assert.True(code2 == 0, error2);
        Assert.False(File.Exists(dir["report/keep.txt"]));
        Assert.True(File.Exists(dir["report/report.md"]));
    }

    [Fact]
    public void NoPartialOutputWhenARunFileIsBroken()
    {
        using var dir = new TempDir();
        var (aligned, fineTuned) = TwoRuns(dir);
        File.WriteAllText(Path.Combine(fineTuned, "task.json"), "{\"model\": \"m\", \"total\": ");
        var (code, _, error) = Run("report", aligned, fineTuned, "-o", dir["report"]);
        Assert.Equal(2, code);
        Assert.Contains("task.json", error);
        Assert.Equal(["runs"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName)); // no report, no temporary
    }

    [Fact]
    public void NeverWritesInsideARunDirectory()
    {
        using var dir = new TempDir();
        var (aligned, fineTuned) = TwoRuns(dir);
        var before = Snapshot(dir["runs"]);
        var (code, _, error) = Run("report", aligned, fineTuned, "-o", Path.Combine(aligned, "report"));
        Assert.Equal(2, code);
        Assert.Contains("refusing", error);
        var (code2, _, _) = Run("report", aligned, fineTuned, "-o", dir["runs"], "--overwrite");
        Assert.Equal(2, code2);
        Assert.Equal(before, Snapshot(dir["runs"]));
        Assert.Equal(["runs"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        Assert.Equal(["aligned", "fine-tuned"], Directory.GetFileSystemEntries(dir["runs"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void HelpDescribesTheCommand()
    {
        var (code, output, _) = Run("report", "--help");
        Assert.Equal(0, code);
        Assert.Contains("RUN_DIR", output);
        Assert.Contains("--labels", output);
        Assert.Contains("--overwrite", output);
    }
}
