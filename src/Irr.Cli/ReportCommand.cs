using System.CommandLine;
using Irr.Eval.Report;

namespace Irr.Cli;

/// <summary>
/// <c>irr report</c>: compares evaluated models (run directories with safety.json and/or task.json) in
/// report.md, report.html, report.json and SVG charts, written into a new directory as a whole (<see cref="ReportJob"/>).
/// </summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var runs = new Argument<string[]>("RUN_DIR") { Description = "evaluation run directories (safety.json and/or task.json), one per model", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "the report directory to create", Required = true };
        var labels = new Option<string?>("--labels") { Description = "comma-separated model labels, one per RUN_DIR (default: the directory names)" };
        var title = new Option<string?>("--title") { Description = $"the report's title (default: \"{ComparisonReport.DefaultTitle}\")" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };

        ReportJob Build(ParseResult r) => new()
        {
            Runs = r.GetValue(runs)!,
            OutputDir = r.GetValue(output)!,
            Labels = r.GetValue(labels)?.Split(',').Select(l => l.Trim()).ToArray(),
            Title = r.GetValue(title),
            Overwrite = r.GetValue(overwrite),
        };

        var command = new JobCommand("report", "Compare evaluated models: tables of harmful rates (per prompt set and per attack) and task accuracy, bar charts, a safety-vs-utility scatter with its Pareto front (Markdown, HTML, JSON, SVG)", Build)
        {
            runs, output, labels, title, overwrite,
        };
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            var console = parseResult.InvocationConfiguration;
            console.Output.Write(report.SummaryMarkdown);
            if (report.SafetyVsUtilitySvg is not null) console.Output.WriteLine($"Pareto front: {string.Join(", ", report.ParetoFront)}");
            var files = new List<string> { ComparisonReport.MarkdownFile, ComparisonReport.HtmlFile, ComparisonReport.JsonFile };
            if (report.HarmfulRateSvg is not null) files.Add(ComparisonReport.HarmfulRateChartFile);
            if (report.AttackSvg is not null) files.Add(ComparisonReport.AttackChartFile);
            if (report.SafetyVsUtilitySvg is not null) files.Add(ComparisonReport.SafetyVsUtilityChartFile);
            console.Error.WriteLine($"wrote {job.OutputDir}: {string.Join(", ", files)}");
            foreach (string note in report.Notes) console.Error.WriteLine($"note: {Diagnostics.Escape(note)}");
            return 0;
        });
        return command;
    }
}
