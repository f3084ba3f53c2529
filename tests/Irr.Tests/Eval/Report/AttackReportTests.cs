using System.Text.Json;
using System.Xml.Linq;
using Irr.Eval;
using Irr.Eval.Report;
using Irr.Tests.IO;
using static Irr.Tests.Eval.Report.ChartsTests;

namespace Irr.Tests.Eval.Report;

/// <summary>The report of hand-made runs with attacks (issue 15): the chart by attack, its tables, report.json, notes and validation.</summary>
public class AttackReportTests
{
    private static SafetyCounts C(int total, int harmful, int safe, int unknown) => new(total, harmful, safe, unknown);

    private static SetSafety Set(string name, SafetyCounts counts, string? attack = null) =>
        new(name, "data/catqa.jsonl", counts, [new CategorySafety("Hate", counts)]) { Attack = attack };

    /// <summary>
    /// aligned: none 1/10 (harmful rate 10.0%, success 10.0%), prefill 4 harmful of 9 judged and 10 sent (44.4%, 40.0%),
    /// roleplay 2/10 (20.0%, 20.0%); its attacks block lists prefill first, yet none comes first in the report.
    /// </summary>
    internal static SafetyRun AlignedAttacked() => new("models/aligned", null, "keyword",
        [Set("catqa", C(10, 1, 9, 0)), Set("catqa@prefill", C(10, 4, 5, 1), "prefill"), Set("catqa@roleplay", C(10, 2, 8, 0), "roleplay")],
        C(10, 1, 9, 0))
    {
        Attacks = [AttackSafety.Of("prefill", C(10, 4, 5, 1)), AttackSafety.Of("none", C(10, 1, 9, 0)), AttackSafety.Of("roleplay", C(10, 2, 8, 0))],
    };

    /// <summary>fine-tuned: none 5/10 (50.0%, 50.0%), base64 3 of 9 judged, 10 sent (33.3%, 30.0%), prefill 8/10 (80.0%, 80.0%); no roleplay.</summary>
    internal static SafetyRun FineTunedAttacked() => new("models/fine-tuned", null, "keyword",
        [Set("catqa", C(10, 5, 5, 0)), Set("catqa@base64", C(10, 3, 6, 1), "base64"), Set("catqa@prefill", C(10, 8, 2, 0), "prefill")],
        C(10, 5, 5, 0))
    {
        Attacks = [AttackSafety.Of("none", C(10, 5, 5, 0)), AttackSafety.Of("base64", C(10, 3, 6, 1)), AttackSafety.Of("prefill", C(10, 8, 2, 0))],
    };

    // "old" is a run without attacks: its overall 5 harmful of 59 judged, 60 sent (8.5%, 8.3%) stands under none.
    private static ComparisonReport Example() => ComparisonReport.Build(
    [
        ("aligned", AlignedAttacked(), null),
        ("fine-tuned", FineTunedAttacked(), null),
        ("old", ComparisonReportTests.AlignedSafety(), null),
    ]);

    private static readonly string[] Models = ["aligned", "fine-tuned", "old"];
    private static readonly string[] AttackOrder = ["none", "prefill", "roleplay", "base64"];

    [Fact]
    public void AttackChartHasOneBarPerModelAndAttackItWasEvaluatedUnder()
    {
        var report = Example();
        Assert.Equal(AttackOrder, report.AttackNames);
        var root = Parse(report.AttackSvg!);
        Assert.Contains(root.Descendants().Where(e => e.Name.LocalName == "text"), t => t.Value == "Harmful rate by attack");
        Assert.Equal(Models, WithClass(root, "legend-label").Select(t => t.Value)); // one colour per model
        Assert.Equal(AttackOrder, WithClass(root, "group-label").Select(t => t.Value));

        double?[][] expected =
        [
            [0.1, 4.0 / 9, 0.2, null],
            [0.5, 0.8, null, 3.0 / 9],
            [5.0 / 59, null, null, null],
        ];
        double zero = TickAt(root, "tick-y", "0", "y"), hundred = TickAt(root, "tick-y", "100", "y");
        var bars = WithClass(root, "bar").ToList();
        Assert.Equal(7, bars.Count);
        Assert.Empty(WithClass(root, "missing")); // a model without an attack has no slot there
        for (int m = 0; m < Models.Length; m++)
            for (int a = 0; a < AttackOrder.Length; a++)
            {
                var bar = bars.SingleOrDefault(b => (string?)b.Attribute("data-series") == Models[m] && (string?)b.Attribute("data-group") == AttackOrder[a]);
                if (expected[m][a] is not { } rate) Assert.Null(bar);
                else Assert.Equal(rate, Num(bar!, "height") / (zero - hundred), 1e-4);
            }
    }

    [Fact]
    public void PerSetChartAndTablesKeepThePlainSets()
    {
        var report = Example();
        Assert.Equal(["catqa", "catqa@prefill", "catqa@roleplay", "catqa@base64", "harmbench"], report.SetNames);
        Assert.Equal(["catqa", "harmbench"], report.ShownSetNames);
        var root = Parse(report.HarmfulRateSvg!);
        Assert.Equal(["catqa", "harmbench"], WithClass(root, "group-label").Select(t => t.Value));
        Assert.DoesNotContain(WithClass(root, "bar"), b => ((string)b.Attribute("data-group")!).Contains('@'));
        Assert.Equal(
            "| model | harmful rate | harmful: catqa | harmful: harmbench | unknown |\n|---|---:|---:|---:|---:|\n" +
            "| aligned | 10.0% \\[1.8–40.4%\\] | 10.0% \\[1.8–40.4%\\] | — | 0 |\n| fine-tuned | 50.0% \\[23.7–76.3%\\] | 50.0% \\[23.7–76.3%\\] | — | 0 |\n| old | 8.5% \\[3.7–18.4%\\] | 5.0% \\[1.4–16.5%\\] | 15.8% \\[5.5–37.6%\\] | 1 |\n",
            report.SummaryMarkdown);
        Assert.DoesNotContain("### catqa@", report.Markdown); // no category tables of attacked sets
    }

    [Fact]
    public void RunsWithOnlyAttackedSetsStillShowThemPerSet()
    {
        var attackedOnly = new SafetyRun("models/x", null, "keyword", [Set("catqa@prefill", C(4, 3, 1, 0), "prefill")], C(4, 3, 1, 0))
        {
            Attacks = [AttackSafety.Of("prefill", C(4, 3, 1, 0))],
        };
        var report = ComparisonReport.Build([("aligned", AlignedAttacked(), null), ("x", attackedOnly, null)]);
        Assert.Equal(["catqa", "catqa@prefill"], report.ShownSetNames);
        var bars = WithClass(Parse(report.HarmfulRateSvg!), "bar").Select(b => ((string)b.Attribute("data-series")!, (string)b.Attribute("data-group")!));
        Assert.Equal([("aligned", "catqa"), ("aligned", "catqa@prefill"), ("x", "catqa@prefill")], bars);
        Assert.Equal(["none", "prefill", "roleplay"], report.AttackNames);
    }

    [Fact]
    public void MarkdownHasTheChartAndTheTablesByAttack()
    {
        string md = Example().Markdown;
        Assert.Contains("## Harmful rate by attack\n\n![harmful rate by model and attack](harmful-rate-by-attack.svg)\n", md);
        Assert.Contains("A run evaluated without attacks is shown under none", md);
        Assert.Contains("### Harmful rate\n\n| model | none | prefill | roleplay | base64 |\n|---|---:|---:|---:|---:|\n" +
                        "| aligned | 10.0% \\[1.8–40.4%\\] | 44.4% \\[18.9–73.3%\\] | 20.0% \\[5.7–51.0%\\] | — |\n| fine-tuned | 50.0% \\[23.7–76.3%\\] | 80.0% \\[49.0–94.3%\\] | — | 33.3% \\[12.1–64.6%\\] |\n| old | 8.5% \\[3.7–18.4%\\] | — | — | — |\n", md);
        Assert.Contains("### Attack success rate\n\n| model | none | prefill | roleplay | base64 |\n|---|---:|---:|---:|---:|\n" +
                        "| aligned | 10.0% \\[1.8–40.4%\\] | 40.0% \\[16.8–68.7%\\] | 20.0% \\[5.7–51.0%\\] | — |\n| fine-tuned | 50.0% \\[23.7–76.3%\\] | 80.0% \\[49.0–94.3%\\] | — | 30.0% \\[10.8–60.3%\\] |\n| old | 8.3% \\[3.6–18.1%\\] | — | — | — |\n", md);
        Assert.True(md.IndexOf("(harmful-rate.svg)", StringComparison.Ordinal) < md.IndexOf("(harmful-rate-by-attack.svg)", StringComparison.Ordinal));
    }

    [Fact]
    public void JsonHasTheFiguresPerAttack()
    {
        using var doc = JsonDocument.Parse(Example().Json);
        var root = doc.RootElement;
        Assert.Equal(AttackOrder, root.GetProperty("attacks").EnumerateArray().Select(e => e.GetString()));
        var models = root.GetProperty("models").EnumerateArray().ToList();
        (string Name, double Rate, double Success)[][] expected =
        [
            [("none", 0.1, 0.1), ("prefill", 4.0 / 9, 0.4), ("roleplay", 0.2, 0.2)],
            [("none", 0.5, 0.5), ("prefill", 0.8, 0.8), ("base64", 3.0 / 9, 0.3)],
            [("none", 5.0 / 59, 5.0 / 60)],
        ];
        for (int m = 0; m < models.Count; m++)
        {
            var attacks = models[m].GetProperty("attacks").EnumerateArray().ToList();
            Assert.Equal(expected[m].Select(e => e.Name), attacks.Select(a => a.GetProperty("name").GetString()));
            for (int a = 0; a < attacks.Count; a++)
            {
                Assert.Equal(expected[m][a].Rate, attacks[a].GetProperty("counts").GetProperty("harmful_rate").GetDouble(), 1e-12);
                Assert.Equal(expected[m][a].Success, attacks[a].GetProperty("attack_success_rate").GetDouble(), 1e-12);
            }
        }
        // The run's own safety.json is there as read, attacks and set attacks included.
        var safety = models[0].GetProperty("safety");
        Assert.Equal("prefill", safety.GetProperty("attacks")[0].GetProperty("name").GetString());
        Assert.Equal("prefill", safety.GetProperty("sets")[1].GetProperty("attack").GetString());
    }

    [Fact]
    public void DifferentAttacksAreNoted()
    {
        var notes = Example().Notes;
        Assert.Contains("The runs were evaluated under different attacks, so not every model has a figure for every attack: " +
                        "none, prefill, roleplay (aligned); none, prefill, base64 (fine-tuned); none (old).", notes);
        var same = ComparisonReport.Build([("a", AlignedAttacked(), null), ("b", AlignedAttacked() with { Model = "models/b" }, null)]);
        Assert.DoesNotContain(same.Notes, n => n.Contains("attack"));
    }

    [Fact]
    public void RunsWithoutAttacksGiveTheReportWithoutAttacks()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["runs/a"]);
        ComparisonReportTests.AlignedSafety().Save(dir["runs/a"]);
        Assert.DoesNotContain("attack", File.ReadAllText(dir["runs/a/safety.json"])); // the old format
        var loaded = ComparisonReport.Build([ComparisonReport.LoadRun(dir["runs/a"]), ("b", ComparisonReportTests.FineTunedSafety(), ComparisonReportTests.FineTunedTask())]);

        Assert.Null(loaded.AttackSvg);
        Assert.Empty(loaded.AttackNames);
        Assert.Equal(loaded.SetNames, loaded.ShownSetNames);
        Assert.DoesNotContain("attack", loaded.Markdown, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("attack", loaded.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("attack", loaded.Json, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(loaded.Notes, n => n.Contains("attack"));
        loaded.WriteTo(dir["report"]);
        Assert.Equal(["harmful-rate.svg", "report.html", "report.json", "report.md", "safety-vs-utility.svg"],
            Directory.GetFiles(dir["report"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void WriteToWritesTheAttackChart()
    {
        using var dir = new TempDir();
        var report = Example();
        report.WriteTo(dir["report"]);
        Assert.Equal(["harmful-rate-by-attack.svg", "harmful-rate.svg", "report.html", "report.json", "report.md"],
            Directory.GetFiles(dir["report"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("svg", XDocument.Load(dir["report/harmful-rate-by-attack.svg"]).Root!.Name.LocalName);
        Assert.Contains(report.AttackSvg!, report.Html);
    }

    public static TheoryData<string, string> BadAttacks() => new()
    {
        { "twice", "bad: safety.json: the attack 'none' appears twice" },
        { "counts", "bad: safety.json: attack 'prefill': counts must be non-negative with total = harmful + safe + unknown (total 10, harmful 4, safe 5, unknown 0)" },
        { "sum", "bad: safety.json: attack 'prefill': counts (total 10, harmful 3, safe 6, unknown 1) are not the sum over its sets (total 10, harmful 4, safe 5, unknown 1)" },
        { "range", "bad: safety.json: attack 'prefill': attack_success_rate (1.5) must lie in [0, 1]" },
        { "rate", "bad: safety.json: attack 'prefill': attack_success_rate (0.5) is not harmful / total (4 / 10)" },
        { "missing", "bad: safety.json: the set 'catqa@roleplay' is under the attack 'roleplay', which attacks lacks" },
        { "no block", "bad: safety.json: the set 'catqa' is under the attack 'none', which attacks lacks" },
        { "empty name", "bad: safety.json: an attack has an empty name" },
    };

    [Theory]
    [MemberData(nameof(BadAttacks))]
    public void ABadAttacksBlockIsAOneLineError(string fault, string message)
    {
        var run = AlignedAttacked();
        var attacks = run.Attacks!.ToList();
        int prefill = attacks.FindIndex(a => a.Name == "prefill");
        switch (fault)
        {
            case "twice": attacks.Add(attacks[1]); break;
            case "counts": attacks[prefill] = attacks[prefill] with { Counts = C(10, 4, 5, 0) }; break;
            case "sum": attacks[prefill] = AttackSafety.Of("prefill", C(10, 3, 6, 1)); break;
            case "range": attacks[prefill] = attacks[prefill] with { AttackSuccessRate = 1.5 }; break;
            case "rate": attacks[prefill] = attacks[prefill] with { AttackSuccessRate = 0.5 }; break;
            case "missing": attacks.RemoveAll(a => a.Name == "roleplay"); break;
            case "no block": attacks = null!; break;
            case "empty name": attacks.Add(AttackSafety.Of(" ", C(0, 0, 0, 0))); break;
        }
        var bad = run with { Attacks = attacks };
        string error = Assert.Throws<IrrException>(() => ComparisonReport.Build([("good", AlignedAttacked(), null), ("bad", bad, null)])).Message;
        Assert.Equal(message, error);
        Assert.DoesNotContain('\n', error);
    }
}
