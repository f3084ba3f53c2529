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
        var command = new JobCommand(typeof(ReportJob));
        command.SetAction(parseResult =>
        {
            var job = command.Build<ReportJob>(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            var console = parseResult.InvocationConfiguration;
            console.Output.Write(report.SummaryMarkdown);
            if (report.SafetyVsUtilitySvg is not null) console.Output.WriteLine($"Pareto front: {string.Join(", ", report.ParetoFront)}");
            var files = new List<string> { ComparisonReport.MarkdownFile, ComparisonReport.HtmlFile, ComparisonReport.JsonFile };
            if (report.HarmfulRateSvg is not null) files.Add(ComparisonReport.HarmfulRateChartFile);
            if (report.AttackSvg is not null) files.Add(ComparisonReport.AttackChartFile);
            if (report.SafetyVsUtilitySvg is not null) files.Add(ComparisonReport.SafetyVsUtilityChartFile);
            if (report.OverRefusalSvg is not null) files.Add(ComparisonReport.OverRefusalChartFile);
            console.Error.WriteLine($"wrote {job.OutputDir}: {string.Join(", ", files)}");
            foreach (string note in report.Notes) console.Error.WriteLine($"note: {Diagnostics.Escape(note)}");
            return 0;
        });
        return command;
    }
}
