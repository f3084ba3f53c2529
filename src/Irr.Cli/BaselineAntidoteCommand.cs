using System.CommandLine;
using System.Globalization;
using Irr.Realign.Baselines;

namespace Irr.Cli;

/// <summary><c>irr baseline antidote</c>: prune the top ρ of θ_F's target weights by |W|·‖X‖ on harmful data (<see cref="AntidoteJob"/>); writes the model and baseline-report.json.</summary>
internal static class BaselineAntidoteCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(AntidoteJob), "antidote");
        command.SetAction(parseResult =>
        {
            var job = command.Build<AntidoteJob>(parseResult);
            var report = CommandSupport.Run(parseResult, job);
            var modulesDone = report.Matrices.Select(m => m.Module).Distinct();
            parseResult.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ρ = {Irr.Realign.SweepBaseline.Readable(job.Ratio)}: {report.Matrices.Count} matrices ({string.Join(", ", modulesDone)}), {report.Pruned} entries pruned, scored on {report.Tokens} tokens of {report.Records} harmful records"));
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote the Antidote model and {AntidoteReport.FileName} to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
