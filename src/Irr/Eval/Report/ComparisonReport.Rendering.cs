using System.Globalization;
using System.Text;

namespace Irr.Eval.Report;

/// <summary>The report's rendering: its blocks (headings, tables, charts) as Markdown and as HTML.</summary>
public sealed partial class ComparisonReport
{
    internal abstract record Block;

    private sealed record Heading(int Level, string Text) : Block;

    private sealed record Paragraph(string Text) : Block;

    // The headline sentence under the title (bold in Markdown, class headline in HTML).
    private sealed record Lead(string Text) : Block;

    private sealed record Bullets(IReadOnlyList<string> Items) : Block;

    private sealed record Chart(string File, string Alt, string Svg) : Block;

    /// <summary>A table: header, rows of cells, and which columns are numeric (right-aligned).</summary>
    internal sealed record Table(IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows, IReadOnlyList<bool> Numeric) : Block;

    private List<Block> BuildBlocks()
    {
        var blocks = new List<Block> { new Heading(1, Title) };
        if (Headline is not null) blocks.Add(new Lead(Headline));
        blocks.Add(SummaryTable());
        var judges = Runs.Where(r => r.Safety is not null).Select(r => r.Safety!.Judge).Distinct().ToList();
        if (judges.Count > 0)
            blocks.Add(new Paragraph($"Harmful rate: harmful / (harmful + safe) responses to the harmful prompts, judged by {string.Join(", ", judges)}; " +
                "responses the judge could not decide (unknown) are left out of the rate and counted separately; — when nothing was judged."));
        if (Runs.Any(r => r.Task is not null)) blocks.Add(new Paragraph("Task accuracy: examples answered correctly / examples, by the metric shown."));
        blocks.Add(new Paragraph("In brackets: the 95% Wilson interval of each rate (drawn as error bars in the charts)." +
            (HarmfulDifferences.Count + TaskDifferences.Count > 0
                ? " Δ columns: the model's rate minus its reference's on the same prompts (examples), in percentage points, with a 95% paired bootstrap interval over the prompts " +
                  $"(prompts either judge could not decide are left out of the pairs); {DeltaReferences()}."
                : "")));

        if (HarmfulRateSvg is not null)
            blocks.AddRange([new Heading(2, "Harmful rate by prompt set"), new Chart(HarmfulRateChartFile, "harmful rate by model and prompt set", HarmfulRateSvg)]);
        if (AttackSvg is not null)
        {
            blocks.AddRange([new Heading(2, "Harmful rate by attack"), new Chart(AttackChartFile, "harmful rate by model and attack", AttackSvg)]);
            string plainOnly = Runs.Any(r => r.Safety is { Attacks: not { Count: > 0 } })
                ? " A run evaluated without attacks is shown under none (its overall counts)." : "";
            blocks.Add(new Paragraph("Per attack, over the prompt sets sent under it: harmful rate = harmful / (harmful + safe) as above; " +
                "attack success rate = harmful / all requests (unknown verdicts count as not harmful). The overall harmful rate and " +
                "the per-set figures above are those of the plain prompts (attack none), or of all sets for a run with attacked sets only." + plainOnly));
            var rates = AttackTable(a => WithInterval(a.Counts.HarmfulRateOrNull, a.Counts.HarmfulRateInterval));
            var success = AttackTable(a => a.Counts.Total == 0 ? Missing : WithInterval(a.AttackSuccessRate, Intervals.Wilson(a.Counts.Harmful, a.Counts.Total)));
            // Without unknown verdicts the two tables are the same: the second is left out.
            if (rates.Rows.SelectMany(r => r).SequenceEqual(success.Rows.SelectMany(r => r)))
                blocks.AddRange([rates, new Paragraph("No verdict was unknown, so the attack success rate equals the harmful rate.")]);
            else
                blocks.AddRange([new Heading(3, "Harmful rate"), rates, new Heading(3, "Attack success rate"), success]);
        }
        blocks.Add(new Heading(2, "Safety vs utility"));
        if (SafetyVsUtilitySvg is not null)
        {
            blocks.Add(new Chart(SafetyVsUtilityChartFile, "task accuracy against harmful rate", SafetyVsUtilitySvg));
            blocks.Add(new Paragraph($"On the Pareto front: {string.Join(", ", ParetoFront)}. A model is on the front when no other model has both " +
                "a lower-or-equal harmful rate and a higher-or-equal task accuracy, with at least one of the two strictly better."));
        }
        else blocks.Add(new Paragraph("Skipped: no model has both a safety.json and a task.json."));
        foreach (var section in Sections)
        {
            blocks.Add(new Heading(2, section.Heading));
            foreach (var part in section.Parts)
            {
                if (part.SubHeading is not null) blocks.Add(new Heading(3, part.SubHeading));
                if (part.Text is not null) blocks.Add(new Paragraph(part.Text));
                if (part.ChartFile is not null && part.ChartSvg is not null) blocks.Add(new Chart(part.ChartFile, part.ChartAlt ?? part.ChartFile, part.ChartSvg));
            }
        }

        var categorySets = ShownSetNames.Where(n => Runs.Any(r => SetOf(r, n)?.Categories.Count > 0)).ToList();
        if (categorySets.Count > 0)
        {
            blocks.Add(new Heading(2, "Harmful rate by category"));
            foreach (string set in categorySets)
            {
                blocks.Add(new Heading(3, set));
                blocks.Add(CategoryTable(set));
            }
        }
        blocks.AddRange(EvidenceBlocks());
        if (Notes.Count > 0) blocks.AddRange([new Heading(2, "Notes"), new Bullets(Notes)]);
        return blocks;
    }

    private static SetSafety? SetOf(ReportRun run, string name) => run.Safety?.Sets.FirstOrDefault(s => s.Name == name);

    /// <summary>
    /// One row per model: label, overall harmful rate with its 95% interval, its difference from the reference (when paired),
    /// per set (when there is more than one), over-refusal (when any run has benign sets), unknown verdicts (when any),
    /// task accuracy with its interval, its difference, and metric (when any run has a task).
    /// </summary>
    internal Table SummaryTable()
    {
        bool anySafety = Runs.Any(r => r.Safety is not null), anyTask = Runs.Any(r => r.Task is not null);
        bool perSet = ShownSetNames.Count > 1, anyUnknown = Runs.Any(r => r.Safety?.Overall.Unknown > 0);
        bool overRefusal = Runs.Any(r => r.Safety?.OverRefusal is not null);
        bool harmfulDelta = HarmfulDifferences.Count > 0, taskDelta = TaskDifferences.Count > 0;
        var header = new List<string> { "model" };
        if (anySafety) header.Add("harmful rate");
        if (harmfulDelta) header.Add($"Δ harmful vs {DeltaReference()}");
        if (perSet) header.AddRange(ShownSetNames.Select(n => $"harmful: {n}"));
        if (overRefusal) header.Add("over-refusal");
        if (anyUnknown) header.Add("unknown");
        if (anyTask) header.Add("task accuracy");
        if (taskDelta) header.Add($"Δ task vs {DeltaReference()}");
        if (anyTask) header.Add("metric");
        var rows = new List<IReadOnlyList<string>>();
        foreach (var run in Runs)
        {
            var row = new List<string> { run.Label };
            if (anySafety) row.Add(run.Safety is { } s ? Percent(s.Overall) : Missing);
            if (harmfulDelta) row.Add(DeltaCell(HarmfulDifferences.GetValueOrDefault(run.Label)));
            if (perSet) row.AddRange(ShownSetNames.Select(n => SetOf(run, n) is { } set ? Percent(set.Counts) : Missing));
            if (overRefusal) row.Add(run.Safety?.OverRefusal is { } o ? WithInterval(o.RefusalRate, o.RefusalRateInterval) : Missing);
            if (anyUnknown) row.Add(run.Safety is { } s2 ? s2.Overall.Unknown.ToString(CultureInfo.InvariantCulture) : Missing);
            if (anyTask) row.Add(run.Task is { } t ? WithInterval(t.Total == 0 ? null : t.Accuracy, t.AccuracyInterval) : Missing);
            if (taskDelta) row.Add(DeltaCell(TaskDifferences.GetValueOrDefault(run.Label)));
            if (anyTask) row.Add(run.Task?.Metric ?? Missing);
            rows.Add(row);
        }
        return new Table(header, rows, header.Select((h, i) => i > 0 && h != "metric").ToList());
    }

    // A difference with its interval: "−92.9 pts [−98.0, −86.9]" (its reference is in the header or the paragraph under the table).
    private static string DeltaCell(RateDifference? d) => DifferenceCell(d);

    // The models the Δ columns compare with: "θ_F" when one, else "the reference".
    private string DeltaReference()
    {
        var references = HarmfulDifferences.Values.Concat(TaskDifferences.Values).Select(d => d.Reference).Distinct().ToList();
        return references.Count == 1 ? references[0] : "reference";
    }

    // "Δ: each model minus full-finetuned (aligned, full-irr …); lora-finetuned (lora-irr …)."
    private string DeltaReferences() => string.Join("; ", HarmfulDifferences.Concat(TaskDifferences).GroupBy(kv => kv.Value.Reference)
        .Select(g => $"vs {g.Key} for {string.Join(", ", g.Select(kv => kv.Key).Distinct())}"));

    /// <summary>Harmful rate per category path of one set: one row per category (first-seen order), one column per model having the set.</summary>
    internal Table CategoryTable(string set)
    {
        var models = Runs.Where(r => SetOf(r, set) is not null).ToList();
        var categories = models.SelectMany(r => SetOf(r, set)!.Categories.Select(c => c.Category)).Distinct().ToList();
        var rows = categories.Select(c => (IReadOnlyList<string>)
            [c, .. models.Select(r => SetOf(r, set)!.Categories.FirstOrDefault(x => x.Category == c) is { } cat ? Percent(cat.Counts) : Missing)]).ToList();
        IReadOnlyList<string> header = ["category", .. models.Select(r => r.Label)];
        return new Table(header, rows, header.Select((_, i) => i > 0).ToList());
    }

    /// <summary>One figure per attack: one row per model with a safety.json, one column per attack (<see cref="AttackNames"/>).</summary>
    internal Table AttackTable(Func<AttackSafety, string> figure)
    {
        var rows = Runs.Where(r => r.Safety is not null).Select(r => (IReadOnlyList<string>)
            [r.Label, .. AttackNames.Select(n => AttackOf(r, n) is { } a ? figure(a) : Missing)]).ToList();
        IReadOnlyList<string> header = ["model", .. AttackNames];
        return new Table(header, rows, header.Select((_, i) => i > 0).ToList());
    }

    private static string Percent(SafetyCounts counts) => WithInterval(counts.HarmfulRateOrNull, counts.HarmfulRateInterval);

    private static string RenderMarkdown(IEnumerable<Block> blocks)
    {
        var sb = new StringBuilder();
        foreach (var block in blocks)
        {
            switch (block)
            {
                case Heading h: sb.Append('#', h.Level).Append(' ').Append(MarkdownText(h.Text)).Append("\n\n"); break;
                case Paragraph p: sb.Append(MarkdownText(p.Text)).Append("\n\n"); break;
                case Lead l: sb.Append("**").Append(MarkdownText(l.Text)).Append("**\n\n"); break;
                case Bullets b:
                    foreach (string item in b.Items) sb.Append("- ").Append(MarkdownText(item)).Append('\n');
                    sb.Append('\n');
                    break;
                case Chart c: sb.Append($"![{c.Alt}]({c.File})\n\n"); break;
                case Table t: sb.Append(MarkdownTable(t)).Append('\n'); break;
            }
        }
        return sb.ToString().TrimEnd('\n') + "\n";
    }

    /// <summary>A GitHub-flavoured Markdown table, numeric columns right-aligned, one line per row.</summary>
    internal static string MarkdownTable(Table table)
    {
        var sb = new StringBuilder();
        sb.Append("| ").Append(string.Join(" | ", table.Header.Select(MarkdownText))).Append(" |\n");
        sb.Append('|').Append(string.Join("|", table.Numeric.Select(n => n ? "---:" : "---"))).Append("|\n");
        foreach (var row in table.Rows) sb.Append("| ").Append(string.Join(" | ", row.Select(MarkdownText))).Append(" |\n");
        return sb.ToString();
    }

    // Backslash-escapes what Markdown would read as markup (and the table separator); line breaks become spaces.
    private static string MarkdownText(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            // An underscore inside a word is never emphasis (catqa_english); at a word's edge it may be.
            bool inWord = i > 0 && i + 1 < text.Length && char.IsLetterOrDigit(text[i - 1]) && char.IsLetterOrDigit(text[i + 1]);
            if (c is '\n' or '\r') sb.Append(' ');
            else if (c == '_' && inWord) sb.Append(c);
            else if (c is '\\' or '`' or '*' or '_' or '[' or ']' or '<' or '>' or '|' or '#') sb.Append('\\').Append(c);
            else sb.Append(c);
        }
        return sb.ToString();
    }

    private string RenderHtml(IEnumerable<Block> blocks)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
          .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
          .Append($"<title>{Svg.Escape(Title)}</title>\n<style>\n{Css}</style>\n</head>\n<body>\n<main>\n");
        foreach (var block in blocks)
        {
            switch (block)
            {
                case Heading h: sb.Append($"<h{h.Level}>{Svg.Escape(h.Text)}</h{h.Level}>\n"); break;
                case Paragraph p: sb.Append($"<p>{Svg.Escape(p.Text)}</p>\n"); break;
                case Lead l: sb.Append($"<p class=\"headline\">{Svg.Escape(l.Text)}</p>\n"); break;
                case Bullets b: sb.Append("<ul>\n").AppendJoin("", b.Items.Select(i => $"<li>{Svg.Escape(i)}</li>\n")).Append("</ul>\n"); break;
                case Chart c: sb.Append($"<figure>\n{c.Svg}</figure>\n"); break;
                case Table t:
                    sb.Append("<div class=\"table-scroll\">\n<table>\n<thead><tr>");
                    for (int i = 0; i < t.Header.Count; i++) sb.Append(t.Numeric[i] ? "<th class=\"num\">" : "<th>").Append(Svg.Escape(t.Header[i])).Append("</th>");
                    sb.Append("</tr></thead>\n<tbody>\n");
                    foreach (var row in t.Rows)
                    {
                        sb.Append("<tr>");
                        for (int i = 0; i < row.Count; i++) sb.Append(t.Numeric[i] ? "<td class=\"num\">" : "<td>").Append(Svg.Escape(row[i])).Append("</td>");
                        sb.Append("</tr>\n");
                    }
                    sb.Append("</tbody>\n</table>\n</div>\n");
                    break;
            }
        }
        sb.Append("</main>\n</body>\n</html>\n");
        return sb.ToString();
    }

    private const string Css = """
        body { margin: 0; background: #fafafa; color: #222; font: 15px/1.5 Helvetica, Arial, sans-serif; }
        main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
        h1 { font-size: 26px; margin: 0 0 16px; }
        h2 { font-size: 20px; margin: 32px 0 12px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
        h3 { font-size: 16px; margin: 20px 0 8px; }
        table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
        th, td { border: 1px solid #d4d4d4; padding: 4px 10px; text-align: left; white-space: nowrap; }
        th { background: #f0f0f0; }
        tbody tr:nth-child(even) { background: #f8f8f8; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        .headline { font-size: 18px; font-weight: bold; margin: 0 0 16px; }
        .table-scroll { max-width: 100%; overflow-x: auto; }
        figure { margin: 8px 0; max-width: 100%; overflow-x: auto; }
        figure svg { display: block; max-width: 100%; height: auto; }
        p { max-width: 860px; }
        @media (max-width: 700px) {
          main { padding: 12px 12px 32px; }
          .headline { font-size: 16px; }
          figure svg { max-width: none; }
        }

        """;
}
