using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Model;
using Irr.Realign;
using Irr.Text;
using Spectre.Console;

namespace Irr.Cli;

/// <summary><c>irr realign</c>: identify, remove and recalibrate, layer by layer; writes the repaired model and irr-report.json.</summary>
internal static class RealignCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(RealignJob));
        command.SetAction(parseResult =>
        {
            var job = command.Build<RealignJob>(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            PrintTable(parseResult, report, job.DryRun);
            if (!job.DryRun) parseResult.InvocationConfiguration.Error.WriteLine($"wrote the realigned model and {RealignReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    // One row per module type, then the total: what was removed and how well it was compensated.
    private static void PrintTable(ParseResult parseResult, RealignReport report, bool dry)
    {
        var console = CommandSupport.ConsoleFor(parseResult.InvocationConfiguration.Output);
        console.Profile.Width = Math.Max(console.Profile.Width, 120); // a redirected output reports 80 columns
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("module");
        table.AddColumn(new TableColumn("matrices").RightAligned());
        table.AddColumn(new TableColumn("parameters").RightAligned());
        table.AddColumn(new TableColumn("conflicts").RightAligned());
        table.AddColumn(new TableColumn("removed").RightAligned());
        table.AddColumn(new TableColumn("removed %").RightAligned());
        if (!dry)
        {
            table.AddColumn(new TableColumn("OBS error").RightAligned());
            table.AddColumn(new TableColumn("retries").RightAligned());
        }
        void Row(string name, IReadOnlyCollection<ModuleReport> ms)
        {
            long p = ms.Sum(m => m.Parameters), removed = ms.Sum(m => m.Removed);
            var cells = new List<string>
            {
                name, ms.Count.ToString(CultureInfo.InvariantCulture), p.ToString("N0", CultureInfo.InvariantCulture),
                ms.Sum(m => m.Conflicts).ToString("N0", CultureInfo.InvariantCulture), removed.ToString("N0", CultureInfo.InvariantCulture),
                (p == 0 ? 0 : 100.0 * removed / p).ToString("F2", CultureInfo.InvariantCulture),
            };
            if (!dry)
            {
                cells.Add(ms.Sum(m => m.ObsError).ToString("G4", CultureInfo.InvariantCulture));
                cells.Add(ms.Sum(m => m.DampingRetries).ToString(CultureInfo.InvariantCulture));
            }
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        foreach (var g in report.Modules.GroupBy(m => m.Module)) Row(g.Key, g.ToList());
        Row("total", report.Modules);
        console.Write(table);
        if (!dry)
            console.WriteLine("time: " + string.Join(", ", report.PhaseSeconds.Select(kv => $"{kv.Key} {kv.Value:F2} s")));
    }
}
