using System.CommandLine;
using System.Globalization;
using Irr.Realign.Baselines;

namespace Irr.Cli;

/// <summary><c>irr baseline safedelta</c>: Safe Delta on θ_A's safety Hessians (<see cref="SafeDeltaJob"/>); writes the model and baseline-report.json.</summary>
internal static class BaselineSafeDeltaCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(SafeDeltaJob), "safedelta");
        command.SetAction(parseResult =>
        {
            var job = command.Build<SafeDeltaJob>(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            var modulesDone = report.Matrices.Select(m => m.Module).Distinct();
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"s = {job.Scale}: {report.Matrices.Count} matrices ({string.Join(", ", modulesDone)}), kept {report.Kept} of {report.Parameters} deltas ({(report.Parameters == 0 ? 0 : (double)report.Kept / report.Parameters):P2})"));
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote the Safe Delta model and {SafeDeltaReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
