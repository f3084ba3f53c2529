using System.CommandLine;
using System.Globalization;
using Irr.Realign.Baselines;

namespace Irr.Cli;

/// <summary><c>irr baseline interpolate</c>: θ = θ_A + α·(θ_F − θ_A) (<see cref="InterpolateJob"/>); writes the model and baseline-report.json.</summary>
internal static class BaselineInterpolateCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(InterpolateJob), "interpolate");
        command.SetAction(parseResult =>
        {
            var job = command.Build<InterpolateJob>(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"α = {job.Alpha}: {report.Tensors.Count} tensors interpolated, ‖θ_F − θ_A‖ = {report.DeltaNorm:G4}"));
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote the interpolated model and {InterpolateReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
