using System.CommandLine;
using System.Globalization;
using Irr.Realign.Baselines;

namespace Irr.Cli;

/// <summary><c>irr baseline resta</c>: W = W_F + γ·v on the target weights (<see cref="RestaJob"/>); writes the model and baseline-report.json.</summary>
internal static class BaselineRestaCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(RestaJob), "resta");
        command.SetAction(parseResult =>
        {
            var job = command.Build<RestaJob>(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            var modulesDone = report.Matrices.Select(m => m.Module).Distinct();
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"γ = {job.Gamma}: {report.Matrices.Count} matrices ({string.Join(", ", modulesDone)}), ‖γ·v‖ = {report.AddedNorm:G4}"));
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote the RESTA model and {RestaReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
