using System.CommandLine;
using System.Globalization;
using Irr.Realign.Baselines;
using Spectre.Console;

namespace Irr.Cli;

/// <summary>
/// <c>irr baseline safelora</c>: Safe LoRA (Hsu et al., NeurIPS 2024): project the LoRA matrices whose update is least
/// similar to its projection onto the alignment subspace; writes a PEFT adapter with baseline-report.json (<see cref="SafeLoraJob"/>).
/// </summary>
internal static class BaselineSafeLoraCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(SafeLoraJob), "safelora");
        command.SetAction(parseResult =>
        {
            var job = command.Build<SafeLoraJob>(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            PrintTable(parseResult, report);
            parseResult.InvocationConfiguration.Error.WriteLine(
                $"projected {report.ProjectedCount} of {report.Matrices.Count} LoRA matrices; wrote the adapter and {SafeLoraReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    // One row per LoRA matrix: its similarity and whether it was projected.
    private static void PrintTable(ParseResult parseResult, SafeLoraReport report)
    {
        var console = CommandSupport.ConsoleFor(parseResult.InvocationConfiguration.Output);
        console.Profile.Width = Math.Max(console.Profile.Width, 100);
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("matrix");
        table.AddColumn(new TableColumn("similarity").RightAligned());
        table.AddColumn("projected");
        foreach (var m in report.Matrices)
            table.AddRow(Markup.Escape(m.Name), m.Similarity.ToString("F5", CultureInfo.InvariantCulture), m.Projected ? "yes" : "no");
        console.Write(table);
    }
}
